"""What the customer reads: short texts in the branch's language and time zone.

German for branches in DE, AT and CH, English elsewhere (as the voice agent speaks).
The SMS is the text alone; the e-mail wraps it with a greeting and the branch's details.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from bookings.models import Appointment

GERMAN_COUNTRIES = frozenset({"DE", "AT", "CH"})
VARIANTS = ("received", "confirmed", "moved", "cancelled", "reminder")

_WEEKDAYS = {
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
    "de": ("Mo.", "Di.", "Mi.", "Do.", "Fr.", "Sa.", "So."),
}
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

_TEXTS: dict[str, dict[str, tuple[str, str]]] = {
    # variant: (e-mail subject, text)
    "en": {
        "received": ("Booking received", "we have your booking for {service} on {when}."),
        "confirmed": ("Appointment confirmed", "your {service} on {when} is confirmed."),
        "moved": ("Appointment moved", "your {service} has been moved to {when}."),
        "cancelled": ("Appointment cancelled", "your {service} on {when} has been cancelled."),
        "reminder": ("Appointment reminder", "a reminder of your {service} on {when}."),
    },
    "de": {
        "received": (
            "Buchung erhalten",
            "wir haben Ihre Buchung für {service} am {when} erhalten.",
        ),
        "confirmed": ("Termin bestätigt", "Ihr Termin für {service} am {when} ist bestätigt."),
        "moved": ("Termin verschoben", "Ihr Termin für {service} wurde auf {when} verschoben."),
        "cancelled": ("Termin abgesagt", "Ihr Termin für {service} am {when} wurde abgesagt."),
        "reminder": ("Terminerinnerung", "zur Erinnerung: Ihr Termin für {service} am {when}."),
    },
}
_FOLLOWS = {"en": "A confirmation follows.", "de": "Die Bestätigung folgt."}
_DEPOSIT = {
    "en": "To confirm it, please pay the deposit of {amount}: {link}",
    "de": "Zur Bestätigung zahlen Sie bitte die Anzahlung von {amount}: {link}",
}
_GREETING = {"en": "Hello {name},", "de": "Guten Tag {name},"}


@dataclass(frozen=True, slots=True)
class Message:
    subject: str
    text: str  # the SMS
    body: str  # the e-mail


def language_of(country: str) -> str:
    return "de" if country.upper() in GERMAN_COUNTRIES else "en"


def format_when(moment: datetime, tz: str, language: str) -> str:
    """``Tue 15 Dec 2026 at 10:00`` / ``Di., 15.12.2026 um 10:00 Uhr``, in ``tz``."""
    local = moment.astimezone(ZoneInfo(tz))
    weekday = _WEEKDAYS[language][local.weekday()]
    if language == "de":
        return f"{weekday}, {local:%d.%m.%Y} um {local:%H:%M} Uhr"
    return f"{weekday} {local.day} {_MONTHS[local.month - 1]} {local.year} at {local:%H:%M}"


def format_amount(amount: Decimal, currency: str, language: str) -> str:
    if language == "de":
        return f"{amount:.2f}".replace(".", ",") + f" {currency}"
    return f"{currency} {amount:.2f}"


def render(appointment: Appointment, variant: str, *, deposit_link: str = "") -> Message:
    """The message for ``variant`` from the appointment as it is now."""
    branch, service = appointment.branch, appointment.service
    language = language_of(branch.country)
    subject, template = _TEXTS[language][variant]
    sender = f"{appointment.company.name}, {branch.name}"
    when = format_when(appointment.start, branch.timezone, language)
    sentence = template.format(service=service.name, when=when)
    text = f"{sender}: {sentence}"
    if variant == "received":
        amount = format_amount(service.deposit, service.currency, language)
        extra = (
            _DEPOSIT[language].format(amount=amount, link=deposit_link)
            if deposit_link
            else _FOLLOWS[language]
        )
        text = f"{text} {extra}"
    details = "\n".join(line for line in (sender, branch.address, branch.phone) if line)
    body = f"{_GREETING[language].format(name=appointment.customer.name)}\n\n{text}\n\n{details}\n"
    return Message(subject=f"{subject}: {service.name}, {when}", text=text, body=body)
