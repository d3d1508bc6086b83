"""A phone caller as a customer: found by their number, with their upcoming appointments.

Everything runs inside the bound tenant, so another company's customer with the same
number is simply not there.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import QuerySet
from django.utils import timezone

from bookings.models import ACTIVE_STATUSES, Appointment, AppointmentStatus, Customer
from tenants.phones import InvalidPhone, normalize_phone

# A cancel answered too late for Retell is retried: the cancellation it already made is
# still "the caller's" for this long.
RECENT_CANCEL = timedelta(minutes=10)


def caller_phone(raw: str | None, region: str) -> str | None:
    """The caller's number as E.164, or ``None`` when withheld or unreadable."""
    try:
        return normalize_phone(raw or "", region)
    except InvalidPhone:
        return None


def customer_by_phone(e164: str) -> Customer | None:
    return Customer.objects.filter(phone=e164).first()


def upcoming(customer: Customer, now: datetime | None = None) -> QuerySet[Appointment]:
    """The customer's active appointments that haven't started, earliest first."""
    return (
        Appointment.objects.filter(
            customer=customer, status__in=ACTIVE_STATUSES, start__gt=now or timezone.now()
        )
        .select_related("service", "staff", "branch")
        .order_by("start", "pk")
    )


def recently_cancelled(customer: Customer, now: datetime | None = None) -> QuerySet[Appointment]:
    """Appointments of the customer cancelled in the last ``RECENT_CANCEL``, newest first."""
    since = (now or timezone.now()) - RECENT_CANCEL
    return (
        Appointment.objects.filter(
            customer=customer, status=AppointmentStatus.CANCELLED, cancelled_at__gte=since
        )
        .select_related("service", "staff", "branch")
        .order_by("-cancelled_at", "-pk")
    )
