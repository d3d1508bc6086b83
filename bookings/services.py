"""Booking, cancelling, moving and closing appointments.

Each function validates, changes state inside one transaction, and writes a history
entry in that same transaction. PostgreSQL's exclusion constraint is the last word on
overlaps; the checks here give callers a precise reason before it has to speak.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import IntegrityError, OperationalError, transaction
from django.utils import timezone

from bookings import notifications
from bookings.availability import Rules, bookable_staff, load_schedules, slots_for
from bookings.errors import (
    InvalidTransition,
    NotOffered,
    OutsideBookingWindow,
    SlotTaken,
    SlotUnavailable,
)
from bookings.models import (
    ACTIVE_STATUSES,
    Appointment,
    AppointmentHistory,
    AppointmentSource,
    AppointmentStatus,
    CalendarSync,
    Customer,
    DepositStatus,
    Service,
    StaffMember,
)
from tenants.context import all_tenants
from tenants.phones import normalize_phone

EXCLUSION_VIOLATION = "23P01"
LOCK_NOT_AVAILABLE = "55P03"
# Two racing bookings can each wait on the other's exclusion check; PostgreSQL aborts one.
DEADLOCK_DETECTED = "40P01"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who or what made a change, for the history: a user, the phone agent, the calendar."""

    kind: str  # "user" | "phone" | "calendar" | "system" | "api"
    user_id: int | None = None

    @property
    def label(self) -> str:
        return f"user:{self.user_id}" if self.user_id else self.kind

    @classmethod
    def user(cls, user: Any) -> Actor:
        return cls(kind="user", user_id=user.pk)


SYSTEM = Actor(kind="system")


def _record(appointment: Appointment, action: str, actor: Actor, **changes: Any) -> None:
    AppointmentHistory.objects.create(
        appointment=appointment,
        company_id=appointment.company_id,
        action=action,
        actor=actor.label,
        user_id=actor.user_id,
        changes={key: _jsonable(value) for key, value in changes.items()},
    )


def record_history(appointment: Appointment, action: str, actor: Actor, **changes: Any) -> None:
    """Append a history entry for a change made outside these services (e.g. the calendar)."""
    _record(appointment, action, actor, **changes)


def _jsonable(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def sqlstate(exc: Exception) -> str | None:
    return getattr(exc.__cause__, "sqlstate", None)


def _constraint(exc: Exception) -> str | None:
    diag = getattr(exc.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None)


@contextmanager
def _conflicts_as_slot_taken() -> Iterator[None]:
    """Let PostgreSQL's verdict on an overlap -- exclusion violation, or a lock wait
    on the conflicting booking past ``lock_timeout`` -- surface as ``SlotTaken``."""
    try:
        yield
    except (IntegrityError, OperationalError) as exc:
        if sqlstate(exc) in (EXCLUSION_VIOLATION, LOCK_NOT_AVAILABLE, DEADLOCK_DETECTED):
            raise SlotTaken("This time was just taken.") from None
        raise


def _check_offered(service: Service, staff: StaffMember) -> StaffMember:
    """Return ``staff`` reloaded with its branch, if it offers ``service``."""
    if not service.active:
        raise NotOffered("This service can't be booked any more.", field="service")
    offering = bookable_staff(service, staff.pk) if staff.active else []
    if not offering:
        raise NotOffered(f"{staff.name} doesn't offer {service.name}.")
    return offering[0]


def _check_window(service: Service, start: datetime, now: datetime) -> None:
    rules = Rules.of(service)
    if start < now:
        raise OutsideBookingWindow("This time is in the past.")
    if start < now + rules.min_notice:
        raise OutsideBookingWindow(
            f"{service.name} needs {service.min_notice_minutes} minutes' notice."
        )
    if start > now + rules.horizon:
        raise OutsideBookingWindow(
            f"{service.name} can be booked at most {service.horizon_days} days ahead."
        )


def check_slot(
    service: Service,
    staff: StaffMember,
    start: datetime,
    *,
    now: datetime,
    moving: Appointment | None = None,
) -> StaffMember:
    """Raise unless ``start`` is a free slot of ``staff`` for ``service``; return ``staff``
    reloaded with its branch."""
    staff = _check_offered(service, staff)
    _check_window(service, start, now)
    day = start.astimezone(ZoneInfo(staff.branch.timezone)).date()
    (schedule,) = load_schedules(
        [staff], day, day, ignore_appointment=moving.pk if moving else None
    )
    rules = Rules.of(service)
    if any(slot.start == start for slot in slots_for(schedule, rules, day, day, now)):
        return staff
    unbooked = dataclasses.replace(schedule, booked=[])
    if any(slot.start == start for slot in slots_for(unbooked, rules, day, day, now)):
        raise SlotTaken("This time was just taken.")
    raise SlotUnavailable(f"{staff.name} is not available for {service.name} at this time.")


def find_or_create_customer(name: str, phone: str, region: str) -> Customer:
    """The customer with this phone (E.164), created if new; safe under concurrency."""
    e164 = normalize_phone(phone, region)
    # get_or_create inserts in a savepoint and re-reads on a unique violation, so two
    # callers booking with the same new number both end up with the one row.
    customer, _ = Customer.objects.get_or_create(phone=e164, defaults={"name": name.strip()})
    return customer


@dataclass(frozen=True, slots=True)
class NewCaller:
    """A customer to find by phone or create -- inside the booking's transaction, so a
    refused booking leaves no customer behind (under concurrency too)."""

    name: str
    phone: str
    region: str


def book_appointment(
    *,
    service: Service,
    staff: StaffMember,
    start: datetime,
    customer: Customer | NewCaller,
    actor: Actor,
    source: str = AppointmentSource.WEB,
    idempotency_key: str | None = None,
    notes: str = "",
    now: datetime | None = None,
    calendar_pending: bool = False,
) -> Appointment:
    """Book ``start`` with ``staff``; raises a ``BookingError`` (``SlotTaken`` on a race).

    ``calendar_pending``: the booking still has to reach the company's calendar, so it
    holds the slot as ``pending`` until the saga (bookings.saga) confirms it.
    """
    now = now or timezone.now()
    if idempotency_key:
        existing = Appointment.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing
    staff = check_slot(service, staff, start, now=now)
    if isinstance(customer, NewCaller):
        customer = find_or_create_customer(customer.name, customer.phone, customer.region)
    deposit = DepositStatus.REQUIRED if service.requires_deposit else DepositStatus.NONE
    appointment = Appointment(
        company_id=staff.company_id,
        branch=staff.branch,
        staff=staff,
        service=service,
        customer=customer,
        start=start,
        end=start + service.duration,
        busy_until=start + service.duration + service.buffer,
        status=AppointmentStatus.PENDING
        if service.requires_deposit or calendar_pending
        else AppointmentStatus.CONFIRMED,
        calendar_sync=CalendarSync.PENDING if calendar_pending else CalendarSync.OFF,
        source=source,
        deposit_status=deposit,
        idempotency_key=idempotency_key or None,
        notes=notes,
    )
    try:
        with _conflicts_as_slot_taken(), transaction.atomic():
            appointment.save(force_insert=True)
            _record(
                appointment,
                "created",
                actor,
                start=start,
                staff=staff.pk,
                status=appointment.status,
            )
            notifications.booked(appointment)
    except IntegrityError as exc:
        # A concurrent retry with the same key won the insert: answer with its booking.
        if idempotency_key and _constraint(exc) == "appointment_unique_idempotency_key":
            return Appointment.objects.get(idempotency_key=idempotency_key)
        raise
    return appointment


def _locked(appointment: Appointment) -> Appointment:
    # Only the appointment's row: select_related would lock the staff member's (and the
    # service's, the branch's) FOR UPDATE too, and a booking of that staff member, whose
    # deferred foreign keys take FOR KEY SHARE on it at COMMIT, would deadlock with us.
    return (
        Appointment.objects.select_for_update(of=("self",))
        .select_related("service", "staff__branch")
        .get(pk=appointment.pk)
    )


def cancel_appointment(appointment: Appointment, *, actor: Actor, reason: str = "") -> Appointment:
    """Cancel an active appointment; cancelling a cancelled one changes nothing."""
    with transaction.atomic():
        current = _locked(appointment)
        if current.status == AppointmentStatus.CANCELLED:
            return current
        if current.status not in ACTIVE_STATUSES:
            raise InvalidTransition(
                f"A {current.get_status_display().lower()} appointment can't be cancelled."
            )
        old = current.status
        current.status = AppointmentStatus.CANCELLED
        current.cancelled_at = timezone.now()
        current.cancellation_reason = reason[:300]
        current.save(update_fields=["status", "cancelled_at", "cancellation_reason", "updated_at"])
        _record(current, "cancelled", actor, status=[old, current.status], reason=reason[:300])
        _tell_calendar(current, actor, "calendar.cancel", reason=reason[:300])
        notifications.cancelled(current)  # whoever cancelled: the customer must know
    return current


def _tell_calendar(appointment: Appointment, actor: Actor, kind: str, **payload: Any) -> None:
    """Queue the change for Cal.com in this transaction, unless Cal.com told us of it."""
    if actor.kind == "calendar" or appointment.calendar_sync == CalendarSync.OFF:
        return
    from integrations import outbox

    moment = appointment.start.isoformat() if kind == "calendar.reschedule" else ""
    outbox.enqueue(
        kind,
        f"{kind}:{appointment.pk}:{moment}".rstrip(":"),
        {"appointment_id": appointment.pk, **payload},
    )


def reschedule_appointment(
    appointment: Appointment,
    *,
    start: datetime,
    actor: Actor,
    staff: StaffMember | None = None,
    now: datetime | None = None,
) -> Appointment:
    """Move an appointment (same id) to ``start``, optionally to another staff member."""
    now = now or timezone.now()
    with _conflicts_as_slot_taken(), transaction.atomic():
        current = _locked(appointment)
        if current.status not in ACTIVE_STATUSES:
            raise InvalidTransition(
                f"A {current.get_status_display().lower()} appointment can't be moved."
            )
        new_staff = staff or current.staff
        check_slot(current.service, new_staff, start, now=now, moving=current)
        previous_start = current.start
        changes = {"start": [current.start, start], "staff": [current.staff_id, new_staff.pk]}
        current.staff = new_staff
        current.branch_id = new_staff.branch_id
        current.start = start
        current.end = start + current.service.duration
        current.busy_until = current.end + current.service.buffer
        current.save(update_fields=["staff", "branch", "start", "end", "busy_until", "updated_at"])
        _record(current, "rescheduled", actor, **changes)
        _tell_calendar(current, actor, "calendar.reschedule")
        notifications.moved(current, previous_start)
    return current


def _close(
    appointment: Appointment, status: str, actor: Actor, now: datetime | None
) -> Appointment:
    now = now or timezone.now()
    with transaction.atomic():
        current = _locked(appointment)
        if current.status not in ACTIVE_STATUSES:
            raise InvalidTransition(
                f"The appointment is already {current.get_status_display().lower()}."
            )
        if current.start > now:
            raise InvalidTransition("The appointment hasn't started yet.")
        old = current.status
        current.status = status
        current.save(update_fields=["status", "updated_at"])
        _record(current, status, actor, status=[old, status])
    return current


def mark_completed(
    appointment: Appointment, *, actor: Actor, now: datetime | None = None
) -> Appointment:
    return _close(appointment, AppointmentStatus.COMPLETED, actor, now)


def mark_no_show(
    appointment: Appointment, *, actor: Actor, now: datetime | None = None
) -> Appointment:
    return _close(appointment, AppointmentStatus.NO_SHOW, actor, now)


def complete_past_appointments(
    now: datetime | None = None, grace: timedelta = timedelta(hours=1)
) -> int:
    """Mark confirmed appointments that ended more than ``grace`` ago as completed."""
    now = now or timezone.now()
    with all_tenants("periodic: complete past appointments"), transaction.atomic():
        due = list(
            Appointment.objects.select_for_update(skip_locked=True)
            .filter(status=AppointmentStatus.CONFIRMED, end__lt=now - grace)
            .values_list("pk", "company_id")[:1000]
        )
        if not due:
            return 0
        Appointment.objects.filter(pk__in=[pk for pk, _ in due]).update(
            status=AppointmentStatus.COMPLETED, updated_at=now
        )
        AppointmentHistory.objects.bulk_create(
            AppointmentHistory(
                appointment_id=pk,
                company_id=company_id,
                action=AppointmentStatus.COMPLETED,
                actor=SYSTEM.label,
                changes={"status": [AppointmentStatus.CONFIRMED, AppointmentStatus.COMPLETED]},
            )
            for pk, company_id in due
        )
    return len(due)


def record_deposit(appointment: Appointment, deposit: str, *, actor: Actor) -> Appointment:
    """Set the deposit state from the payment provider; a paid deposit confirms a pending
    appointment. A late "failed" never undoes "paid" (events arrive out of order)."""
    with transaction.atomic():
        current = _locked(appointment)
        changes: dict[str, Any] = {}
        if current.deposit_status != deposit and not (
            current.deposit_status == DepositStatus.PAID and deposit == DepositStatus.FAILED
        ):
            changes["deposit_status"] = [current.deposit_status, deposit]
            current.deposit_status = deposit
        if (
            current.deposit_status == DepositStatus.PAID
            and current.status == AppointmentStatus.PENDING
        ):
            changes["status"] = [current.status, AppointmentStatus.CONFIRMED]
            current.status = AppointmentStatus.CONFIRMED
        if changes:
            current.save(update_fields=["deposit_status", "status", "updated_at"])
            _record(current, "deposit", actor, **changes)
            if "status" in changes:
                notifications.confirmed(current)
    return current
