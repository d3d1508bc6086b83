"""Customer notifications: confirmations, cancellations, moves, reminders, deposit links.

Called inside the transaction that makes the change (``bookings.services``,
``bookings.saga``)::

    notifications.booked(appointment)      # "received" (pending) or "confirmed"
    notifications.confirmed(appointment)   # pending → confirmed (calendar, deposit paid)
    notifications.cancelled(appointment)
    notifications.moved(appointment, previous_start)

Each writes an outbox job (``integrations.outbox``) with the change, so it exists
exactly when the change commits and is retried until sent. Its handler
(``delivery.py``) renders from the appointment's *current* state (``messages.py``) and
sends by e-mail (Django's mail backend, when the customer has an address) and SMS
(``sms.py``, ``settings.SMS_BACKEND``). Reminders: ``reminders.py``, beat every 10 min.

Every actor's changes are told, the calendar's included: a customer must hear that an
appointment was cancelled or moved whoever did it. Only someone who was told of the
booking hears of its cancellation (a caller told "slot taken" gets no SMS about it).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bookings.models import Appointment, CalendarSync
from bookings.notifications import delivery as _delivery  # noqa: F401 - outbox handlers
from bookings.notifications import tasks as _tasks  # noqa: F401 - Celery task
from integrations import outbox
from integrations.models import OutboxJob

# A booking still on its way to the calendar is usually confirmed within the request
# (8 s deadline): waiting this long sends one confirmation instead of "received" first.
CALENDAR_GRACE = timedelta(seconds=10)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _enqueue(
    kind: str, appointment: Appointment, *, key: str = "", delay: timedelta | None = None
) -> None:
    outbox.enqueue(
        kind,
        key or f"{kind}:{appointment.pk}",
        {"appointment_id": appointment.pk, "start": _stamp(appointment.start)},
        delay=delay,
    )


def booked(appointment: Appointment) -> None:
    """A new booking: "received" while pending, else "confirmed" (whichever holds then)."""
    pending_calendar = appointment.calendar_sync == CalendarSync.PENDING
    _enqueue("notify.booked", appointment, delay=CALENDAR_GRACE if pending_calendar else None)


def confirmed(appointment: Appointment) -> None:
    """A pending booking became confirmed (calendar synced, deposit paid)."""
    _enqueue("notify.confirmed", appointment)


def cancelled(appointment: Appointment) -> None:
    _enqueue("notify.cancelled", appointment)


def moved(appointment: Appointment, previous_start: datetime) -> None:
    """The appointment now starts elsewhen; a move to the same time says nothing."""
    if appointment.start == previous_start:
        return
    key = f"notify.moved:{appointment.pk}:{_stamp(appointment.start)}"
    told = OutboxJob.objects.filter(key__startswith=key).count()
    _enqueue("notify.moved", appointment, key=f"{key}:{told + 1}" if told else key)


def reminder(appointment: Appointment) -> None:
    """One reminder per appointment and start time (a moved appointment gets a new one)."""
    key = f"notify.reminder:{appointment.pk}:{_stamp(appointment.start)}"
    _enqueue("notify.reminder", appointment, key=key)
