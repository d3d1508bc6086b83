"""Create (idempotently) the benchmark company and print what the runner needs, as JSON.

Run by ``bench/run.py`` at the start of each run with the benchmark environment, as the
app's role (``DATABASE_URL=askpro_app``, so row-level security applies here too):
``python -m bench.setup_data``. Its stdout is read by the runner, which keeps the API
token to itself.

Each run wipes the company's appointments and customers and loads the same fixed set:
40 staff members working every day 00:00-23:59 (Europe/Berlin), one 30-minute service
stepped every 30 minutes, 500 customers and 2,000 appointments over the next 365 days.
The appointments sit at 23:30-00:00 local time, a slot the shift can't offer (it ends
at 23:59), so they fill the list scenario without taking a slot the booking scenario
books or the availability scenario shows: every run starts from the same calendar.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from bookings.models import Service
    from tenants.models import Branch, Company

COMPANY_SLUG = "bench"
STAFF_COUNT = 40
MANAGER_USERNAME = "bench-manager"
TIMEZONE = "Europe/Berlin"
SHIFT_START, SHIFT_END = time(0, 0), time(23, 59)
CUSTOMER_COUNT = 500
APPOINTMENT_COUNT = 2000
APPOINTMENT_DAYS = 365  # from tomorrow on
APPOINTMENT_AT = time(23, 30)  # outside every bookable slot: see the module docstring
CUSTOMER_PHONE = "+49160{:08d}"  # the booking scenario's customers use +49151...


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "askpro.settings")
    import django

    django.setup()
    from django.db import transaction

    with transaction.atomic():
        result = seed()
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


def seed() -> dict[str, Any]:
    from tenants.context import tenant_context
    from tenants.models import Company

    company, _ = Company.objects.update_or_create(
        slug=COMPANY_SLUG,
        defaults={"name": "Bench Co", "timezone": TIMEZONE, "country": "DE", "active": True},
    )
    token = _manager_token(company)
    with tenant_context(company):
        _wipe_bookings()
        branch = _branch()
        service = _service()
        staff_ids = [_staff_member(branch, service, n) for n in range(1, STAFF_COUNT + 1)]
        customer_ids = _customers()
        appointments = _appointments(branch, service, staff_ids, customer_ids)
        webhook = _stripe_endpoint()
    return {
        "company": {"id": company.pk, "slug": company.slug},
        "branch": {"id": branch.pk, "timezone": branch.timezone},
        "service": {"id": service.pk, "duration_minutes": service.duration_minutes},
        "staff": staff_ids,
        "customers": len(customer_ids),
        "appointments": appointments,
        "webhook": webhook,
        "api_token": token,
    }


def _manager_token(company: Company) -> str:
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from tenants.models import Membership, Role

    user, _ = get_user_model().objects.get_or_create(
        username=MANAGER_USERNAME, defaults={"email": "manager@bench.example"}
    )
    user.set_unusable_password()
    user.is_active, user.is_staff, user.is_superuser = True, False, False
    user.save()
    Membership.objects.update_or_create(user=user, company=company, defaults={"role": Role.MANAGER})
    token, _ = Token.objects.get_or_create(user=user)
    return str(token.key)


def _stripe_endpoint() -> dict[str, str]:
    """The company's Stripe endpoint (as ``tenants.demo.seed_webhooks`` makes it), its
    events and payments wiped: the webhook and drain scenarios start from none."""
    import secrets

    from webhooks.models import Payment, WebhookEndpoint, WebhookEvent

    WebhookEvent.objects.all().delete()
    Payment.objects.all().delete()
    endpoint, _ = WebhookEndpoint.objects.get_or_create(
        provider="stripe", defaults={"secret": f"whsec_{secrets.token_urlsafe(24)}"}
    )
    return {"path": endpoint.path, "secret": endpoint.secret}


def _wipe_bookings() -> None:
    """Appointments (history cascades), idempotency records, customers, absences."""
    from bookings.models import Appointment, Closure, Customer, IdempotencyRecord, TimeOff

    for model in (Appointment, IdempotencyRecord, Customer, TimeOff, Closure):
        model.objects.all().delete()


def _branch() -> Branch:
    from tenants.models import Branch

    branch, _ = Branch.objects.update_or_create(
        name="Bench Branch",
        defaults={"timezone": TIMEZONE, "country": "DE", "phone": "+49301234567"},
    )
    return branch


def _service() -> Service:
    from bookings.models import Service

    service, _ = Service.objects.update_or_create(
        name="Bench Cut",
        defaults={
            "duration_minutes": 30,
            "slot_interval_minutes": 30,
            "min_notice_minutes": 0,
            "horizon_days": 366,
            "buffer_minutes": 0,
            "deposit": 0,
            "active": True,
        },
    )
    return service


def _staff_member(branch: Branch, service: Service, number: int) -> int:
    """One staff member offering ``service``, working every day 00:00-23:59."""
    from bookings.models import StaffMember, StaffService, Weekday, WorkingHours

    staff, _ = StaffMember.objects.update_or_create(
        branch=branch, name=f"Bench Staff {number:02d}", defaults={"active": True}
    )
    StaffService.objects.get_or_create(staff=staff, service=service)
    for weekday in Weekday.values:
        WorkingHours.objects.update_or_create(
            staff=staff,
            weekday=weekday,
            defaults={
                "start": SHIFT_START,
                "end": SHIFT_END,
                "break_start": None,
                "break_end": None,
            },
        )
    WorkingHours.objects.filter(staff=staff).exclude(weekday__in=Weekday.values).delete()
    return int(staff.pk)


def _customers() -> list[int]:
    from bookings.models import Customer

    customers = Customer.objects.bulk_create(
        Customer(name=f"Bench Customer {n:04d}", phone=CUSTOMER_PHONE.format(n))
        for n in range(1, CUSTOMER_COUNT + 1)
    )
    return [int(customer.pk) for customer in customers]


def _appointments(
    branch: Branch, service: Service, staff_ids: list[int], customer_ids: list[int]
) -> dict[str, Any]:
    """APPOINTMENT_COUNT appointments at 23:30 local, evenly over APPOINTMENT_DAYS days.

    About 5.5 a day, each day's with different staff members (so they never overlap);
    one in ten cancelled, the rest confirmed; sources alternate phone and web."""
    from bookings.models import Appointment, AppointmentSource, AppointmentStatus

    tz = ZoneInfo(branch.timezone)
    first = datetime.now(tz).date() + timedelta(days=1)
    length = timedelta(minutes=service.duration_minutes)
    rows = []
    for n in range(APPOINTMENT_COUNT):
        day = first + timedelta(days=n * APPOINTMENT_DAYS // APPOINTMENT_COUNT)
        start = datetime.combine(day, APPOINTMENT_AT, tz)
        cancelled = n % 10 == 9
        rows.append(
            Appointment(
                branch=branch,
                staff_id=staff_ids[n % len(staff_ids)],
                service=service,
                customer_id=customer_ids[n % len(customer_ids)],
                start=start,
                end=start + length,
                busy_until=start + length,
                status=AppointmentStatus.CANCELLED if cancelled else AppointmentStatus.CONFIRMED,
                source=AppointmentSource.PHONE if n % 2 else AppointmentSource.WEB,
                cancellation_reason="bench" if cancelled else "",
                cancelled_at=start - timedelta(days=1) if cancelled else None,
            )
        )
    Appointment.objects.bulk_create(rows, batch_size=1000)
    return {
        "count": len(rows),
        "first_day": first.isoformat(),
        "days": APPOINTMENT_DAYS,
        "local_time": APPOINTMENT_AT.strftime("%H:%M"),
    }


if __name__ == "__main__":
    main()
