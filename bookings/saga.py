"""The booking saga: one booking, consistent across our database, Cal.com and Stripe.

    appointment = saga.book(service=…, staff=…, start=…, customer=…, actor=…)

1. Take the slot here as ``pending`` (calendar sync outstanding) and commit: the
   exclusion constraint now protects it from every other booking.
2. Create the Cal.com booking (tagged with our appointment id, so a retried create finds
   it instead of making a second one).
3. Confirm here. If Cal.com refuses for good (the time is taken there), release the slot
   and tell the caller. If Cal.com can't be reached (breaker open, timeouts), keep the
   booking pending and leave the sync to the outbox. If our confirm fails after Cal.com
   said yes — or the appointment was cancelled meanwhile — cancel the Cal.com booking.
4. A deposit, when the service wants one, is a Stripe Checkout Session keyed by the
   appointment (docs/decisions/0006-booking-saga.md). A payment that arrives for an
   appointment that no longer holds its slot is refunded (``deposit.refund``).

Inside a transaction (the admin's forms, ``defer=True``) steps 2 to 4 can't run between
commits: the booking is taken as pending and the work goes to the outbox in the same
transaction.
Companies without Cal.com book in one step, as before.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, OperationalError, transaction

from bookings import notifications, services
from bookings.errors import BookingError, SlotTaken
from bookings.models import (
    ACTIVE_STATUSES,
    Appointment,
    AppointmentSource,
    AppointmentStatus,
    CalendarSync,
    Customer,
    DepositStatus,
    Service,
    StaffMember,
)
from integrations import outbox
from integrations.clients.calcom import Attendee, CalcomClient
from integrations.clients.stripe import StripeClient
from integrations.credentials import Credentials, credentials_for
from integrations.deadline import Deadline
from integrations.errors import IntegrationError, ProviderUnavailable
from integrations.models import OutboxJob
from monitoring import metrics

logger = logging.getLogger(__name__)

SYSTEM = services.Actor(kind="system")
CALENDAR_DEADLINE_SECONDS = 8.0
SAFETY_NET = timedelta(minutes=2)
JOB_DEADLINE_SECONDS = 30.0


def _calendar(service: Service) -> Credentials | None:
    """The company's Cal.com credentials when this service is kept in Cal.com."""
    if service.calcom_event_type_id is None:
        return None
    return credentials_for("calcom")


def metadata_of(appointment: Appointment) -> dict[str, str]:
    """What tags a Cal.com booking as ours (the webhook handler and reconciliation read it)."""
    return {
        "askpro_appointment_id": str(appointment.pk),
        "askpro_company_id": str(appointment.company_id),
    }


# askpro_bookings_total's source label, by the appointment's source.
METRIC_SOURCES: dict[str, str] = {
    AppointmentSource.PHONE: "voice",
    AppointmentSource.WEB: "api",
    AppointmentSource.ADMIN: "admin",
    AppointmentSource.CALENDAR: "calendar",
}


def book(*, source: str, **kwargs: Any) -> Appointment:
    """Book (see :func:`_book`) and count the outcome in ``askpro_bookings_total``."""
    label = METRIC_SOURCES.get(source, "api")
    try:
        appointment = _book(source=source, **kwargs)
    except SlotTaken:
        metrics.bookings.labels(label, "slot_taken").inc()
        raise
    except BookingError:
        metrics.bookings.labels(label, "rejected").inc()
        raise
    outcome = "booked" if appointment.status == AppointmentStatus.CONFIRMED else "pending"
    metrics.bookings.labels(label, outcome).inc()
    return appointment


def _book(
    *,
    service: Service,
    staff: StaffMember,
    start: datetime,
    customer: Customer | services.NewCaller,
    actor: services.Actor,
    source: str,
    idempotency_key: str | None = None,
    notes: str = "",
    deadline: Deadline | None = None,
    defer: bool = False,
) -> Appointment:
    """Book across our database, Cal.com and Stripe; raises ``BookingError``s like
    ``services.book_appointment`` (``SlotTaken`` also when Cal.com has the time taken).

    ``defer=True`` (inside the caller's transaction, e.g. an admin form): take the slot
    and leave calendar and deposit to the outbox. Otherwise the slot is committed before
    Cal.com is called, so this must not run inside a transaction (``durable``).
    """
    creds = _calendar(service)
    with transaction.atomic(durable=not defer):
        appointment = services.book_appointment(
            service=service,
            staff=staff,
            start=start,
            customer=customer,
            actor=actor,
            source=source,
            idempotency_key=idempotency_key,
            notes=notes,
            calendar_pending=creds is not None,
        )
        if appointment.calendar_sync == CalendarSync.PENDING:
            # Committed with the booking: if this process dies at Cal.com, the job finishes.
            outbox.enqueue(*_create_job(appointment), delay=None if defer else SAFETY_NET)
    if defer:
        _defer_deposit(appointment)
        return appointment
    if creds is not None and appointment.calendar_sync == CalendarSync.PENDING:
        deadline = deadline or Deadline.after(CALENDAR_DEADLINE_SECONDS)
        try:
            appointment = sync_to_calendar(appointment, creds, deadline)
        except IntegrationError as exc:
            if refused(exc):
                release(appointment, f"the calendar refused: {exc.message}")
                raise SlotTaken("The calendar already has this time taken.") from None
            # Unreachable, breaker open, bad credentials: pending; the job retries it.
            logger.warning("appointment %s: calendar sync deferred (%s)", appointment.pk, exc)
    if appointment.deposit_status == DepositStatus.REQUIRED:
        request_deposit(appointment, deadline=deadline)
    return appointment


def _create_job(appointment: Appointment) -> tuple[str, str, dict[str, Any]]:
    return (
        "calendar.create",
        f"calendar.create:{appointment.pk}",
        {"appointment_id": appointment.pk},
    )


def _defer_deposit(appointment: Appointment) -> None:
    """Inside the caller's transaction: leave the deposit to the outbox."""
    if appointment.deposit_status == DepositStatus.REQUIRED:
        outbox.enqueue(
            "deposit.checkout",
            f"deposit.checkout:{appointment.pk}",
            {"appointment_id": appointment.pk},
        )


def refused(exc: IntegrationError) -> bool:
    """Cal.com answered about this booking and said no (a 4xx such as 409 "taken").

    An open breaker, a timeout or rejected credentials say nothing about the slot: the
    booking stays pending and the outbox keeps trying (a credentials failure shows on the
    company's Integration row and the job's error)."""
    return exc.kind == "rejected"


def release(appointment: Appointment, reason: str) -> None:
    """Give the slot back: the booking failed for good."""
    services.cancel_appointment(appointment, actor=SYSTEM, reason=reason[:300])


def sync_to_calendar(
    appointment: Appointment, creds: Credentials, deadline: Deadline
) -> Appointment:
    """Create the Cal.com booking for `appointment` and confirm it here (steps 2 and 3)."""
    calendar = CalcomClient(creds, deadline)
    booking = calendar.create_booking(
        event_type_id=int(appointment.service.calcom_event_type_id or 0),
        start=appointment.start,
        attendee=Attendee(
            name=appointment.customer.name,
            time_zone=appointment.branch.timezone,
            email=appointment.customer.email,
            phone=appointment.customer.phone,
        ),
        metadata=metadata_of(appointment),
    )
    uid = str(booking["uid"])
    try:
        confirmed = confirm(appointment, uid)
    except DatabaseError:
        calendar.cancel_booking(uid, "AskPro could not confirm this booking")
        raise
    if confirmed is None:  # cancelled while we were at Cal.com
        calendar.cancel_booking(uid, "Cancelled in AskPro before the calendar confirmed")
        return Appointment.objects.get(pk=appointment.pk)
    return confirmed


CONFIRM_ATTEMPTS = 3


def confirm(appointment: Appointment, uid: str) -> Appointment | None:
    """Mark the appointment as in the calendar; None when it no longer holds its slot.

    The update re-checks the exclusion constraint, so a booking racing for an overlapping
    time can deadlock with it (40P01) and PostgreSQL may abort ours: that transaction is
    rolled back whole and tried again (the racer's insert fails; ours holds the slot)."""
    for attempt in range(1, CONFIRM_ATTEMPTS + 1):
        try:
            return _confirm_once(appointment, uid)
        except OperationalError as exc:
            deadlock = services.sqlstate(exc) == services.DEADLOCK_DETECTED
            if not deadlock or attempt == CONFIRM_ATTEMPTS:
                raise
            logger.info(
                "appointment %s: confirm deadlocked with a racing booking; again", appointment.pk
            )
    return None  # not reached


def _confirm_once(appointment: Appointment, uid: str) -> Appointment | None:
    with transaction.atomic():
        current = Appointment.objects.select_for_update().get(pk=appointment.pk)
        if current.status not in ACTIVE_STATUSES:
            return None
        changes: dict[str, Any] = {"calendar_sync": [current.calendar_sync, CalendarSync.SYNCED]}
        current.calcom_uid = uid
        current.calendar_sync = CalendarSync.SYNCED
        if current.status == AppointmentStatus.PENDING and current.deposit_status in (
            DepositStatus.NONE,
            DepositStatus.PAID,
        ):
            changes["status"] = [current.status, AppointmentStatus.CONFIRMED]
            current.status = AppointmentStatus.CONFIRMED
        current.save(update_fields=["calcom_uid", "calendar_sync", "status", "updated_at"])
        services.record_history(current, "calendar_synced", SYSTEM, **changes)
        if "status" in changes:
            notifications.confirmed(current)
        outbox.complete(_create_job(current)[1])  # the safety net has nothing left to do
    return current


def request_deposit(appointment: Appointment, *, deadline: Deadline | None = None) -> None:
    """Create the deposit's Checkout Session (once per appointment); later if Stripe fails."""
    creds = credentials_for("stripe")
    if creds is None:
        return
    try:
        _create_checkout(appointment, creds, deadline or Deadline.after(CALENDAR_DEADLINE_SECONDS))
    except IntegrationError as exc:
        # An open breaker isn't a refusal (nothing was sent): later, as for the calendar.
        if exc.permanent and not isinstance(exc, ProviderUnavailable):
            logger.error("appointment %s: deposit checkout refused: %s", appointment.pk, exc)
            return
        with transaction.atomic():
            outbox.enqueue(
                "deposit.checkout",
                f"deposit.checkout:{appointment.pk}",
                {"appointment_id": appointment.pk},
            )


def deposit_link(appointment: Appointment) -> str:
    """The Checkout page of the appointment's outstanding deposit, for the customer's
    message; made now (same Stripe idempotency key) if the saga hasn't yet. "" when no
    deposit is due, Stripe isn't connected or refused; a retryable failure raises."""
    if (
        appointment.deposit_status != DepositStatus.REQUIRED
        or appointment.status not in ACTIVE_STATUSES
    ):
        return ""
    if appointment.deposit_checkout_url:
        return appointment.deposit_checkout_url
    creds = credentials_for("stripe")
    if creds is None:
        return ""
    try:
        return _create_checkout(appointment, creds, Deadline.after(JOB_DEADLINE_SECONDS))
    except IntegrationError as exc:
        if exc.retryable or isinstance(exc, ProviderUnavailable):
            raise  # the message waits (its job retries) rather than going out without a link
        logger.error("appointment %s: deposit checkout refused: %s", appointment.pk, exc)
        return ""


def _create_checkout(appointment: Appointment, creds: Credentials, deadline: Deadline) -> str:
    service = appointment.service
    base = str(settings.PUBLIC_BASE_URL).rstrip("/")
    session = StripeClient(creds, deadline).create_deposit_checkout(
        company_id=appointment.company_id,
        appointment_id=appointment.pk,
        amount_cents=int(service.deposit * 100),
        currency=service.currency,
        description=f"Deposit: {service.name}",
        success_url=f"{base}/deposit/done/",
        cancel_url=f"{base}/deposit/cancelled/",
    )
    url = str(getattr(session, "url", None) or "")
    Appointment.objects.filter(pk=appointment.pk).update(
        stripe_checkout_session_id=session.id, deposit_checkout_url=url
    )
    return url


# --- the outbox's handlers ------------------------------------------------------------


def _job_appointment(job: OutboxJob) -> Appointment:
    found = (
        Appointment.objects.select_related("service", "branch", "customer")
        .filter(pk=job.payload.get("appointment_id"))
        .first()
    )
    if found is None:
        raise outbox.PermanentJobFailure("the appointment no longer exists")
    return found


def _job_calendar() -> Credentials:
    creds = credentials_for("calcom")
    if creds is None:
        raise outbox.PermanentJobFailure("the company has no Cal.com credentials any more")
    return creds


@outbox.handler("calendar.create")
def _calendar_create(job: OutboxJob) -> None:
    appointment = _job_appointment(job)
    if appointment.calendar_sync != CalendarSync.PENDING:
        return  # synced already (the request did it after all)
    if appointment.status not in ACTIVE_STATUSES:
        return  # cancelled before it reached the calendar: nothing to create
    try:
        sync_to_calendar(appointment, _job_calendar(), Deadline.after(JOB_DEADLINE_SECONDS))
    except IntegrationError as exc:
        if refused(exc):
            release(appointment, f"the calendar refused: {exc.message}")
        raise


@outbox.handler("calendar.cancel")
def _calendar_cancel(job: OutboxJob) -> None:
    appointment = _job_appointment(job)
    if appointment.calcom_uid:
        CalcomClient(_job_calendar(), Deadline.after(JOB_DEADLINE_SECONDS)).cancel_booking(
            appointment.calcom_uid, str(job.payload.get("reason") or "")
        )


@outbox.handler("calendar.reschedule")
def _calendar_reschedule(job: OutboxJob) -> None:
    """Move the Cal.com booking to where the appointment is now (latest state wins)."""
    appointment = _job_appointment(job)
    if not appointment.calcom_uid or appointment.status not in ACTIVE_STATUSES:
        return  # the create (still queued) books the current time; a cancel handles the rest
    calendar = CalcomClient(_job_calendar(), Deadline.after(JOB_DEADLINE_SECONDS))
    current = calendar.get_booking(appointment.calcom_uid)
    if current.get("start") and _same_instant(str(current["start"]), appointment.start):
        return
    moved = calendar.reschedule_booking(appointment.calcom_uid, appointment.start)
    Appointment.objects.filter(pk=appointment.pk, calcom_uid=appointment.calcom_uid).update(
        calcom_uid=str(moved["uid"])
    )


@outbox.handler("deposit.checkout")
def _deposit_checkout(job: OutboxJob) -> None:
    appointment = _job_appointment(job)
    if appointment.status not in ACTIVE_STATUSES or appointment.stripe_checkout_session_id:
        return
    creds = credentials_for("stripe")
    if creds is None:
        raise outbox.PermanentJobFailure("the company has no Stripe credentials any more")
    _create_checkout(appointment, creds, Deadline.after(JOB_DEADLINE_SECONDS))


@outbox.handler("deposit.refund")
def _deposit_refund(job: OutboxJob) -> None:
    creds = credentials_for("stripe")
    if creds is None:
        raise outbox.PermanentJobFailure("the company has no Stripe credentials any more")
    StripeClient(creds, Deadline.after(JOB_DEADLINE_SECONDS)).refund(
        company_id=job.company_id, payment_intent=str(job.payload["payment_intent"])
    )


def _same_instant(value: str, moment: datetime) -> bool:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) == moment
