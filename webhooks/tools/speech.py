"""What the voice agent says: short sentences in the branch's language (German or English).

German for branches in DE, AT and CH (the agent's language, as provisioned), English
elsewhere. Every phrase the tools speak lives here, in both languages.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from integrations.provisioning.definition import language_for

DE, EN = "de", "en"

_WEEKDAYS = {
    DE: ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"),
    EN: ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}
_MONTHS = {
    DE: (
        "Januar",
        "Februar",
        "März",
        "April",
        "Mai",
        "Juni",
        "Juli",
        "August",
        "September",
        "Oktober",
        "November",
        "Dezember",
    ),
    EN: (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
}

_FIELDS = {
    DE: {
        "service": "die Leistung",
        "staff": "den Namen der Mitarbeiterin oder des Mitarbeiters",
        "date": "das Datum",
        "date_to": "das Enddatum",
        "start": "die Uhrzeit",
        "name": "Ihren Namen",
        "confirm_name": "Ihren Namen",
        "appointment": "den Termin",
        "call": "den Anruf",
    },
    EN: {
        "service": "the service",
        "staff": "the staff member's name",
        "date": "the date",
        "date_to": "the end date",
        "start": "the time",
        "name": "your name",
        "confirm_name": "your name",
        "appointment": "the appointment",
        "call": "the call",
    },
}

PHRASES: dict[str, dict[str, str]] = {
    "invalid_arguments": {
        DE: "Entschuldigung, {field} habe ich nicht richtig verstanden.",
        EN: "Sorry, I didn't quite get {field}.",
    },
    "internal": {
        DE: "Entschuldigung, da ist gerade etwas schiefgegangen. Bitte versuchen Sie es "
        "gleich noch einmal, oder ich verbinde Sie mit dem Team.",
        EN: "Sorry, something went wrong on our side. Please try again in a moment, "
        "or I can put you through to the team.",
    },
    "unknown_agent": {
        DE: "Diese Leitung ist noch nicht fertig eingerichtet. Ich verbinde Sie mit dem Team.",
        EN: "This line isn't fully set up yet. Let me put you through to the team.",
    },
    "unknown_tool": {
        DE: "Das kann ich leider nicht erledigen.",
        EN: "Sorry, I can't do that.",
    },
    "caller_withheld": {
        DE: "Ihre Rufnummer ist unterdrückt, deshalb kann ich Sie nicht zuordnen.",
        EN: "Your number is withheld, so I can't look you up.",
    },
    "caller_known": {
        DE: "Schön, dass Sie anrufen, {name}. Sie haben {count}.",
        EN: "Welcome back, {name}. You have {count}.",
    },
    "caller_unknown": {
        DE: "Zu Ihrer Nummer habe ich noch keinen Eintrag.",
        EN: "I don't have your number on file yet.",
    },
    "unknown_service": {
        DE: "Die Leistung „{query}“ kenne ich nicht. Wir bieten an: {options}.",
        EN: 'I don\'t know the service "{query}". We offer: {options}.',
    },
    "ambiguous_service": {
        DE: "Meinen Sie {options}?",
        EN: "Did you mean {options}?",
    },
    "no_services": {
        DE: "Hier kann ich im Moment leider keine Termine vergeben.",
        EN: "Sorry, I can't book any appointments here at the moment.",
    },
    "unknown_staff": {
        DE: "„{query}“ finde ich bei uns nicht. Für {service} sind da: {options}.",
        EN: 'I can\'t find "{query}" here. For {service} we have: {options}.',
    },
    "ambiguous_staff": {
        DE: "Meinen Sie {options}?",
        EN: "Did you mean {options}?",
    },
    "slots": {
        DE: "Frei ist {times}.",
        EN: "I have {times}.",
    },
    "closed": {
        DE: "{on_day} haben wir geschlossen.",
        EN: "We're closed {on_day}.",
    },
    "no_slots": {
        DE: "{on_day} ist leider nichts mehr frei.",
        EN: "Sorry, there's nothing free {on_day}.",
    },
    "next_days": {
        DE: "Freie Termine gibt es wieder {days}.",
        EN: "There are free times {days}.",
    },
    "nothing_soon": {
        DE: "In den nächsten zwei Wochen ist leider nichts frei.",
        EN: "Sorry, there's nothing free in the next two weeks.",
    },
    "past": {
        DE: "Dieser Zeitpunkt liegt schon in der Vergangenheit.",
        EN: "That time is already in the past.",
    },
    "too_soon": {
        DE: "Für {service} brauchen wir {minutes} Minuten Vorlauf.",
        EN: "{service} needs {minutes} minutes' notice.",
    },
    "too_far": {
        DE: "{service} kann ich höchstens {days} Tage im Voraus buchen.",
        EN: "I can book {service} at most {days} days ahead.",
    },
    "booked": {
        DE: "Ihr Termin ist gebucht: {service} {when} bei {staff}.",
        EN: "You're booked for {service} {when} with {staff}.",
    },
    "pending_calendar": {
        DE: "Ihr Termin ist eingetragen: {service} {when} bei {staff}. "
        "Die Bestätigung folgt in Kürze.",
        EN: "I've put you down for {service} {when} with {staff}. "
        "The confirmation follows shortly.",
    },
    "pending_deposit": {
        DE: "Ihr Termin ist vorgemerkt: {service} {when} bei {staff}. Sie bekommen einen "
        "Link für die Anzahlung; mit der Zahlung ist der Termin bestätigt.",
        EN: "I've reserved {service} {when} with {staff}. You'll get a link for the "
        "deposit; the appointment is confirmed once it's paid.",
    },
    "slot_taken": {
        DE: "Dieser Termin ist leider gerade vergeben worden.",
        EN: "Sorry, that time has just been taken.",
    },
    "unavailable": {
        DE: "Zu dieser Zeit ist leider kein Termin möglich.",
        EN: "Sorry, that time isn't available.",
    },
    "alternatives": {
        DE: "Ich hätte {times}.",
        EN: "I could offer {times}.",
    },
    "number_withheld": {
        DE: "Ihre Rufnummer ist unterdrückt. Termine absagen oder verschieben kann ich nur, "
        "wenn Sie mit Ihrer Nummer anrufen, oder ich verbinde Sie mit dem Team.",
        EN: "Your number is withheld. I can only cancel or move appointments when you call "
        "from your own number, or I can put you through to the team.",
    },
    "no_appointments": {
        DE: "Unter Ihrer Nummer finde ich keine anstehenden Termine.",
        EN: "I can't find any upcoming appointments for your number.",
    },
    "choose_appointment": {
        DE: "Sie haben mehrere Termine: {items}. Welchen meinen Sie?",
        EN: "You have several appointments: {items}. Which one do you mean?",
    },
    "appointment_not_found": {
        DE: "Diesen Termin finde ich unter Ihrer Nummer nicht.",
        EN: "I can't find that appointment for your number.",
    },
    "name_mismatch": {
        DE: "Der Name passt nicht zur Buchung, deshalb kann ich den Termin nicht ändern.",
        EN: "That name doesn't match the booking, so I can't change the appointment.",
    },
    "not_changeable": {
        DE: "Dieser Termin kann nicht mehr geändert werden.",
        EN: "That appointment can't be changed any more.",
    },
    "cancelled": {
        DE: "Ihr Termin {service} {when} ist abgesagt.",
        EN: "Your {service} appointment {when} is cancelled.",
    },
    "rescheduled": {
        DE: "Ihr Termin ist verschoben: {service} jetzt {when} bei {staff}.",
        EN: "Done: {service} is now {when} with {staff}.",
    },
    "listed": {
        DE: "Sie haben {count}: {items}.",
        EN: "You have {count}: {items}.",
    },
}

_COUNTS = {
    DE: ("keine anstehenden Termine", "einen anstehenden Termin", "{n} anstehende Termine"),
    EN: ("no upcoming appointments", "one upcoming appointment", "{n} upcoming appointments"),
}


def language(country: str) -> str:
    """``de`` or ``en``: the language the branch's agent speaks."""
    return DE if language_for(country).code.startswith("de") else EN


def say(lang: str, key: str, **values: str) -> str:
    """The phrase ``key`` in ``lang``, filled in, starting with a capital letter."""
    text = PHRASES[key][lang].format(**values)
    return text[:1].upper() + text[1:]


def field_name(lang: str, field: str) -> str:
    return _FIELDS[lang].get(field, field)


def count(lang: str, n: int) -> str:
    none, one, many = _COUNTS[lang]
    return none if n == 0 else one if n == 1 else many.format(n=n)


def either(lang: str, items: Sequence[str], last: str = "or") -> str:
    """``a, b or c`` (``oder``/``und`` in German)."""
    word = {"or": {DE: "oder", EN: "or"}, "and": {DE: "und", EN: "and"}}[last][lang]
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {word} {items[-1]}"


def day_name(lang: str, day: date) -> str:
    """``Donnerstag, 27. November`` / ``Thursday, November 27``."""
    weekday, month = _WEEKDAYS[lang][day.weekday()], _MONTHS[lang][day.month - 1]
    return f"{weekday}, {day.day}. {month}" if lang == DE else f"{weekday}, {month} {day.day}"


def on_day(lang: str, day: date, today: date) -> str:
    """``heute`` / ``morgen`` / ``am Donnerstag, 27. November`` (English alike)."""
    offset = (day - today).days
    if offset == 0:
        return "heute" if lang == DE else "today"
    if offset == 1:
        return "morgen" if lang == DE else "tomorrow"
    return f"am {day_name(lang, day)}" if lang == DE else f"on {day_name(lang, day)}"


def clock(lang: str, moment: datetime) -> str:
    """``um 10 Uhr`` / ``um 10:30 Uhr``; ``at 10 am`` / ``at 2:30 pm`` (local wall time)."""
    hour, minute = moment.hour, moment.minute
    if lang == DE:
        return f"um {hour} Uhr" if minute == 0 else f"um {hour}:{minute:02d} Uhr"
    suffix = "am" if hour < 12 else "pm"
    shown = hour % 12 or 12
    return f"at {shown} {suffix}" if minute == 0 else f"at {shown}:{minute:02d} {suffix}"


def when(lang: str, moment: datetime, today: date) -> str:
    """``am Donnerstag, 27. November um 10 Uhr`` (``moment`` in the branch's zone)."""
    return f"{on_day(lang, moment.date(), today)} {clock(lang, moment)}"


def with_staff(lang: str, name: str) -> str:
    return f"bei {name}" if lang == DE else f"with {name}"


def times(lang: str, moments: Sequence[tuple[datetime, str]], today: date) -> str:
    """Several slots for speaking, the day named once per day:
    ``am Freitag, 28. November um 9 Uhr bei Anna oder um 11 Uhr bei Jonas``."""
    groups: list[tuple[date, list[str]]] = []
    for moment, staff in moments:
        part = f"{clock(lang, moment)} {with_staff(lang, staff)}".strip()
        if groups and groups[-1][0] == moment.date():
            groups[-1][1].append(part)
        else:
            groups.append((moment.date(), [part]))
    spoken = [f"{on_day(lang, day, today)} {either(lang, parts)}" for day, parts in groups]
    return either(lang, spoken) if len(spoken) <= 2 else "; ".join(spoken)


def days(lang: str, found: Sequence[date], today: date) -> str:
    return either(lang, [on_day(lang, day, today) for day in found])


def span(lang: str, first: date, last: date, today: date) -> str:
    """``heute`` for one day, ``zwischen Montag, 1. und Freitag, 5. Dezember`` for several."""
    if first == last:
        return on_day(lang, first, today)
    word = ("zwischen", "und") if lang == DE else ("between", "and")
    return f"{word[0]} {day_name(lang, first)} {word[1]} {day_name(lang, last)}"
