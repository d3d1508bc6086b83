"""Forget a customer: erase their personal data, keep the business's facts, anonymised.

What happens to each place (README "Personal data"):

- ``Customer``: name "Forgotten customer", phone, e-mail and notes blank,
  ``forgotten_at`` set. The row stays, so appointments keep a customer.
- ``Appointment``: times, service, staff, status, deposit state stay; ``notes`` (staff's
  free text, "Name given on the phone: …") and the deposit's Checkout link are blanked;
  the cancellation reason loses the name, number and e-mail.
- ``AppointmentHistory``: entries stay; the name, number and e-mail are cut out of their
  changes; one ``personal_data_erased`` entry per appointment records the erasure.
- ``CallLog`` (their calls, by customer or number): transcript, recording link, summary
  and the customer's number blanked; times, duration and outcome stay.
- ``WebhookEvent``: the customer's events keep only ids, times, amounts and metadata
  (``bookings.privacy.events``); the de-duplication key stays.
- ``OutboxJob``, ``Payment`` of their appointments: name, number, e-mail cut out of
  payloads, errors and failure messages; amounts stay.
- ``IdempotencyRecord`` answers that carry the number or e-mail: deleted (a 24 h cache).
- Everything else of the company: ``bookings.privacy.sweep``; admin ``LogEntry``:
  ``bookings.privacy.adminlog``.

All of it runs in one transaction inside the bound tenant. The number itself is recorded
nowhere: the report and the log name the customer's id only.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from bookings.models import ACTIVE_STATUSES, Appointment, AppointmentHistory, Customer
from bookings.privacy import events
from bookings.privacy.adminlog import scrub_admin_log
from bookings.privacy.needles import Needles
from bookings.privacy.sweep import sweep
from bookings.services import Actor, record_history
from integrations.models import OutboxJob
from webhooks.models import CallLog, Payment

logger = logging.getLogger(__name__)

FORGOTTEN_NAME = "Forgotten customer"
OPERATOR = Actor(kind="operator")


class NothingToForget(LookupError):
    """No customer, call or stored text of the bound company holds this number."""


@dataclass
class Erasure:
    """What one erasure changed, by place (counts only: no personal data)."""

    customer_id: int | None = None
    appointments: int = 0
    upcoming: int = 0  # active appointments still ahead: kept, the business decides
    calls: int = 0
    events: int = 0
    other: Counter[str] = field(default_factory=Counter)

    @property
    def empty(self) -> bool:
        return self.customer_id is None and not (self.calls or self.events or self.total_other)

    @property
    def total_other(self) -> int:
        return sum(self.other.values())

    def lines(self) -> list[str]:
        found = [
            f"customer: {self.customer_id if self.customer_id else 'none on file'}",
            f"appointments anonymised: {self.appointments} ({self.upcoming} still upcoming)",
            f"calls erased: {self.calls}",
            f"provider events erased: {self.events}",
        ]
        found += [f"{label}: {count} row(s) changed" for label, count in sorted(self.other.items())]
        return found


def forget_phone(e164: str, *, actor: Actor = OPERATOR) -> Erasure:
    """Forget whoever has the number ``e164`` in the bound company; ``NothingToForget``
    when nothing holds it (never known, or already forgotten)."""
    with transaction.atomic():
        customer = Customer.objects.select_for_update().filter(phone=e164).first()
        needles = Needles(
            phone=e164,
            email=customer.email if customer else "",
            name=customer.name if customer else "",
        )
        erasure = _erase(customer, needles, actor)
        if erasure.empty:
            raise NothingToForget("No customer, call or record of this company has this number.")
    return erasure


def forget_customer(customer: Customer, *, actor: Actor = OPERATOR) -> Erasure:
    """Forget ``customer`` (also one without a phone number)."""
    with transaction.atomic():
        locked = Customer.objects.select_for_update().get(pk=customer.pk)
        if locked.forgotten_at is not None:
            raise NothingToForget("This customer has already been forgotten.")
        needles = Needles(phone=locked.phone, email=locked.email, name=locked.name)
        return _erase(locked, needles, actor)


def _erase(customer: Customer | None, needles: Needles, actor: Actor) -> Erasure:
    now = timezone.now()
    erasure = Erasure(customer_id=customer.pk if customer else None)
    appointments = list(Appointment.objects.filter(customer=customer)) if customer else []
    calls = _calls(customer, needles)
    links = events.Links(
        call_ids=[call.call_id for call in calls],
        calcom_uids=[a.calcom_uid for a in appointments if a.calcom_uid],
        appointment_ids=[a.pk for a in appointments],
    )
    erasure.events = _erase_events(needles, links)
    erasure.calls = _erase_calls(calls, needles)
    erasure.other.update(_scrub_related(appointments, needles))
    erasure.appointments = _erase_appointments(appointments, needles)
    erasure.upcoming = sum(1 for a in appointments if a.status in ACTIVE_STATUSES and a.start > now)
    if customer is not None:
        _anonymise(customer, now)
        for appointment in appointments:
            record_history(appointment, "personal_data_erased", actor)
    erasure.other.update(sweep(needles))
    own: dict[type[Any], list[int]] = {
        Customer: [customer.pk] if customer else [],
        Appointment: links.appointment_ids,
    }
    erasure.other["admin.logentry"] += scrub_admin_log(needles, own)
    erasure.other = +erasure.other  # drop zero counts
    if not erasure.empty:
        logger.info(
            "personal data erased: customer %s, %s appointment(s), %s call(s), %s event(s)",
            erasure.customer_id,
            erasure.appointments,
            erasure.calls,
            erasure.events,
        )
    return erasure


def _calls(customer: Customer | None, needles: Needles) -> list[CallLog]:
    """The customer's calls: linked to them, or from or to their number."""
    q = Q(pk__in=[])
    if customer is not None:
        q |= Q(customer=customer)
    if needles.phone:
        q |= Q(from_number=needles.phone) | Q(to_number=needles.phone)
    return list(CallLog.objects.filter(q))


def _erase_calls(calls: list[CallLog], needles: Needles) -> int:
    for call in calls:
        CallLog.objects.filter(pk=call.pk).update(
            transcript="",
            recording_url="",
            summary="",
            from_number="" if call.from_number == needles.phone else call.from_number,
            to_number="" if call.to_number == needles.phone else call.to_number,
            disconnection_reason=needles.scrub(call.disconnection_reason, with_name=True),
        )
    return len(calls)


def _erase_events(needles: Needles, links: events.Links) -> int:
    """Slim the customer's events; cut mentions out of others'. Returns events changed."""
    changed = 0
    for event in events.candidates(needles, links):
        theirs = events.is_theirs(event, needles, links)
        payload = events.slim(event.provider, event.payload) if theirs else event.payload
        payload = needles.scrub_json(payload, with_name=theirs)
        last_error = needles.scrub(event.last_error, with_name=theirs)
        if (payload, last_error) != (event.payload, event.last_error):
            type(event).objects.filter(pk=event.pk).update(payload=payload, last_error=last_error)
            changed += 1
    return changed


def _scrub_related(appointments: list[Appointment], needles: Needles) -> Counter[str]:
    """History, outbox jobs and payments of the customer's appointments: cut out the name
    too (the sweep, for everyone's rows, looks for the number and e-mail only)."""
    ids = [a.pk for a in appointments]
    changed: Counter[str] = Counter()
    if not ids:
        return changed
    for entry in AppointmentHistory.objects.filter(appointment_id__in=ids):
        changes = needles.scrub_json(entry.changes, with_name=True)
        if changes != entry.changes:
            AppointmentHistory.objects.filter(pk=entry.pk).update(changes=changes)
            changed["bookings.appointmenthistory"] += 1
    for job in OutboxJob.objects.filter(payload__appointment_id__in=ids):
        payload = needles.scrub_json(job.payload, with_name=True)
        error = needles.scrub(job.last_error, with_name=True)
        if (payload, error) != (job.payload, job.last_error):
            OutboxJob.objects.filter(pk=job.pk).update(payload=payload, last_error=error)
            changed["integrations.outboxjob"] += 1
    for payment in Payment.objects.filter(appointment_id__in=ids):
        message = needles.scrub(payment.failure_message, with_name=True)
        if message != payment.failure_message:
            Payment.objects.filter(pk=payment.pk).update(failure_message=message)
            changed["webhooks.payment"] += 1
    return changed


def _erase_appointments(appointments: list[Appointment], needles: Needles) -> int:
    for appointment in appointments:
        Appointment.objects.filter(pk=appointment.pk).update(
            notes="",
            deposit_checkout_url="",
            cancellation_reason=needles.scrub(appointment.cancellation_reason, with_name=True),
        )
    return len(appointments)


def _anonymise(customer: Customer, now: datetime) -> None:
    customer.name = FORGOTTEN_NAME
    customer.phone = ""
    customer.email = ""
    customer.notes = ""
    customer.forgotten_at = now
    customer.save(update_fields=["name", "phone", "email", "notes", "forgotten_at"])
