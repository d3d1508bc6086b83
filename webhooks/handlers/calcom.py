"""Cal.com booking webhooks → create, move or cancel appointments by Cal.com uid.

Cal.com may deliver out of order (or never retry). The inbox is the memory: a create
that arrives after its cancel, or after the reschedule that replaced it, finds that
later event among the stored ones and ends right.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import IntegrityError

from bookings import services
from bookings.models import Appointment, AppointmentSource, AppointmentStatus, Service, StaffMember
from monitoring import metrics
from tenants.models import Company
from tenants.phones import InvalidPhone
from webhooks.handlers import PermanentFailure, handles
from webhooks.models import WebhookEvent

CALENDAR = services.Actor(kind="calendar")


def _when(value: Any) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise PermanentFailure(f"not a time: {value!r}") from None
    if moment.tzinfo is None:
        raise PermanentFailure("a Cal.com time without offset")
    return moment


def _later_event(event: WebhookEvent, trigger: str, **payload_lookup: Any) -> bool:
    lookup = {f"payload__payload__{key}": value for key, value in payload_lookup.items()}
    return WebhookEvent.objects.filter(
        endpoint_id=event.endpoint_id, event_type=trigger, **lookup
    ).exists()


def _customer(event: WebhookEvent, booking: dict[str, Any]) -> Any:
    attendee = (booking.get("attendees") or [{}])[0]
    phone = attendee.get("phoneNumber") or (booking.get("responses") or {}).get(
        "attendeePhoneNumber", {}
    ).get("value")
    name = str(attendee.get("name") or "Calendar guest")[:200]
    region = Company.objects.values_list("country", flat=True).get(pk=event.company_id)
    try:
        return services.find_or_create_customer(name, str(phone or ""), region)
    except InvalidPhone:
        raise PermanentFailure("the attendee has no usable phone number") from None


def _create(event: WebhookEvent, booking: dict[str, Any], uid: str) -> None:
    staff = (
        StaffMember.objects.select_related("branch")
        .filter(calcom_user_id=(booking.get("organizer") or {}).get("id"))
        .first()
    )
    service = Service.objects.filter(calcom_event_type_id=booking.get("eventTypeId")).first()
    if staff is None or service is None:
        raise PermanentFailure("no staff member or service matches this Cal.com booking")
    start, end = _when(booking.get("startTime")), _when(booking.get("endTime"))
    cancelled = _later_event(event, "BOOKING_CANCELLED", uid=uid)
    try:
        Appointment.objects.create(
            branch=staff.branch,
            staff=staff,
            service=service,
            customer=_customer(event, booking),
            start=start,
            end=end,
            busy_until=end + service.buffer,
            calcom_uid=uid,
            source=AppointmentSource.CALENDAR,
            status=AppointmentStatus.CANCELLED if cancelled else AppointmentStatus.CONFIRMED,
        )
    except IntegrityError as exc:
        metrics.bookings.labels("calendar", "slot_taken").inc()
        raise PermanentFailure(f"the calendar booking clashes here: {exc}") from None
    metrics.bookings.labels("calendar", "booked").inc()


def _link_our_own(booking: dict[str, Any], uid: str) -> bool:
    """A booking the saga made (tagged with our id) that it hasn't confirmed yet: link it."""
    ours = str((booking.get("metadata") or {}).get("askpro_appointment_id") or "")
    if not ours.isdigit():
        return False
    Appointment.objects.filter(pk=int(ours), calcom_uid__isnull=True).update(calcom_uid=uid)
    return True


@handles("calcom", "BOOKING_CREATED")
def booking_created(event: WebhookEvent) -> None:
    booking = event.payload["payload"]
    uid = str(booking["uid"])
    if Appointment.objects.filter(calcom_uid=uid).exists():
        return  # ours (made through the saga) or already applied
    if _link_our_own(booking, uid):
        return
    if _later_event(event, "BOOKING_RESCHEDULED", rescheduleUid=uid):
        return  # replaced before we saw it; the reschedule created the new one
    _create(event, booking, uid)


@handles("calcom", "BOOKING_RESCHEDULED")
def booking_rescheduled(event: WebhookEvent) -> None:
    booking = event.payload["payload"]
    uid, old_uid = str(booking["uid"]), str(booking.get("rescheduleUid") or "")
    if Appointment.objects.filter(calcom_uid=uid).exists():
        return
    appointment = Appointment.objects.select_related("service").filter(calcom_uid=old_uid).first()
    if appointment is None:
        _create(event, booking, uid)
        return
    start, end = _when(booking.get("startTime")), _when(booking.get("endTime"))
    try:
        Appointment.objects.filter(pk=appointment.pk).update(
            start=start, end=end, busy_until=end + appointment.service.buffer, calcom_uid=uid
        )
    except IntegrityError as exc:
        raise PermanentFailure(f"the new calendar time clashes here: {exc}") from None
    services.record_history(appointment, "rescheduled", CALENDAR, start=[appointment.start, start])


@handles("calcom", "BOOKING_CANCELLED")
def booking_cancelled(event: WebhookEvent) -> None:
    booking = event.payload["payload"]
    appointment = Appointment.objects.filter(calcom_uid=str(booking["uid"])).first()
    if appointment is None:
        return  # the create, when it comes, finds this cancel and ends cancelled
    reason = str(booking.get("cancellationReason") or "cancelled in the calendar")
    services.cancel_appointment(appointment, actor=CALENDAR, reason=reason)
