"""The outbox handlers that tell the customer: decide from the appointment's current
state, claim the message, send it by e-mail and SMS.

No message goes out twice:

- the outbox runs one job per key (``notify.booked:42``, ``notify.moved:42:<start>``, …);
- the customer's state (``Appointment.customer_notified``) is claimed with a conditional
  UPDATE before sending, so "booked" and "confirmed" jobs racing for one appointment
  send one confirmation, and a cancellation goes only to someone told of the booking;
- the job's payload records the variant it claimed and each channel done, so a retry
  after a failed SMS doesn't send the e-mail again.

A crash between a send and its record can't be made exactly-once with e-mail or SMS;
that narrow window is the only way a message could repeat.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.core.mail import EmailMessage
from django.db import transaction
from django.utils import timezone

from bookings.models import Appointment, AppointmentStatus, DepositStatus
from bookings.notifications import messages
from bookings.notifications.sms import sms_channel
from integrations import outbox
from integrations.errors import IntegrationError
from integrations.models import OutboxJob

# What the customer has been told (Appointment.customer_notified).
NOTHING, RECEIVED, CONFIRMED, CANCELLED = "", "pending", "confirmed", "cancelled"

Decide = Callable[[OutboxJob, Appointment], str | None]


def _load(job: OutboxJob) -> Appointment | None:
    return (
        Appointment.objects.select_related("service", "branch", "customer", "company")
        .filter(pk=job.payload.get("appointment_id"))
        .first()
    )


def _progress(job: OutboxJob, **changes: Any) -> None:
    job.payload = {**job.payload, **changes}
    OutboxJob.objects.filter(pk=job.pk).update(payload=job.payload)


def _claim(
    job: OutboxJob, appointment: Appointment, variant: str, told: tuple[str, ...], now: str
) -> str | None:
    """Move the customer's state from one of ``told`` to ``now``; the job owns the message."""
    with transaction.atomic():
        won = Appointment.objects.filter(pk=appointment.pk, customer_notified__in=told).update(
            customer_notified=now
        )
        if won:
            _progress(job, variant=variant, sent=[])
    return variant if won else None


def _own(job: OutboxJob, variant: str) -> str:
    _progress(job, variant=variant, sent=[])
    return variant


def _same_start(job: OutboxJob, appointment: Appointment) -> bool:
    return datetime.fromisoformat(str(job.payload.get("start"))) == appointment.start


def _deliver(job: OutboxJob, decide: Decide) -> None:
    appointment = _load(job)
    if appointment is None or appointment.start <= timezone.now():
        return  # gone, or too late to say anything useful
    variant = job.payload.get("variant")
    if variant is None:  # first attempt: decide and claim, then read what the claim saw
        variant = decide(job, appointment)
        if variant is None:
            return
        appointment = _load(job) or appointment
    elif not _still_true(job, appointment, variant):
        return  # a retry, after the appointment changed: its own job tells
    message = messages.render(
        appointment, variant, deposit_link=_deposit_link(appointment, variant)
    )
    sent = list(job.payload.get("sent", []))
    customer = appointment.customer
    if customer.email and "email" not in sent:
        _send(
            "email", lambda: EmailMessage(message.subject, message.body, to=[customer.email]).send()
        )
        sent.append("email")
        _progress(job, sent=sent)
    if customer.phone and "sms" not in sent:
        _send("sms", lambda: sms_channel().send(customer.phone, message.text))
        sent.append("sms")
        _progress(job, sent=sent)


def _still_true(job: OutboxJob, appointment: Appointment, variant: str) -> bool:
    if variant == "cancelled":
        return appointment.status == AppointmentStatus.CANCELLED
    if variant in ("moved", "reminder") and not _same_start(job, appointment):
        return False
    return appointment.is_active


def _send(channel: str, send: Callable[[], Any]) -> None:
    """Send; a failure becomes a retryable error naming the channel, never the address."""
    try:
        send()
    except Exception as exc:
        raise IntegrationError(
            channel, "send", "delivery", type(exc).__name__, retryable=True
        ) from None


def _deposit_link(appointment: Appointment, variant: str) -> str:
    if variant != "received" or appointment.deposit_status != DepositStatus.REQUIRED:
        return ""
    from bookings import saga

    return saga.deposit_link(appointment)


# --- one handler per kind ----------------------------------------------------------------


def _booked(job: OutboxJob, appointment: Appointment) -> str | None:
    if appointment.status == AppointmentStatus.PENDING:
        return _claim(job, appointment, "received", (NOTHING,), RECEIVED)
    return _confirmed(job, appointment)


def _confirmed(job: OutboxJob, appointment: Appointment) -> str | None:
    if appointment.status != AppointmentStatus.CONFIRMED:
        return None
    return _claim(job, appointment, "confirmed", (NOTHING, RECEIVED), CONFIRMED)


def _cancelled(job: OutboxJob, appointment: Appointment) -> str | None:
    if appointment.status != AppointmentStatus.CANCELLED:
        return None
    # Only someone told of the booking hears of its end (not a caller told "slot taken").
    return _claim(job, appointment, "cancelled", (RECEIVED, CONFIRMED), CANCELLED)


def _moved(job: OutboxJob, appointment: Appointment) -> str | None:
    if not appointment.is_active or not _same_start(job, appointment):
        return None  # cancelled since, or moved again (that move's job tells)
    if appointment.customer_notified == NOTHING:
        return None  # the booking's own message, still to come, gives the new time
    return _own(job, "moved")


def _reminder(job: OutboxJob, appointment: Appointment) -> str | None:
    if appointment.status != AppointmentStatus.CONFIRMED or not _same_start(job, appointment):
        return None
    return _own(job, "reminder")


DECIDERS: dict[str, Decide] = {
    "notify.booked": _booked,
    "notify.confirmed": _confirmed,
    "notify.cancelled": _cancelled,
    "notify.moved": _moved,
    "notify.reminder": _reminder,
}


def _register(kind: str, decide: Decide) -> None:
    outbox.handler(kind)(lambda job: _deliver(job, decide))


for _kind, _decide in DECIDERS.items():
    _register(_kind, _decide)
