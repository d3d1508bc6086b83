"""Create (idempotently) the benchmark company and print what the runner needs, as JSON.

Run by ``bench/run.py`` with the benchmark environment (``python -m bench.setup_data``);
its stdout is read by the runner, which keeps the API token to itself.

Each run leaves the company with no appointments and no customers, so the booking
scenario always starts from the same empty calendar: 40 staff members working every day
00:00-23:59 (Europe/Berlin), one 30-minute service stepped every 30 minutes.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bookings.models import Service
    from tenants.models import Branch, Company

COMPANY_SLUG = "bench"
STAFF_COUNT = 40
MANAGER_USERNAME = "bench-manager"
TIMEZONE = "Europe/Berlin"
SHIFT_START, SHIFT_END = time(0, 0), time(23, 59)


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
    return {
        "company": {"id": company.pk, "slug": company.slug},
        "branch": {"id": branch.pk, "timezone": branch.timezone},
        "service": {"id": service.pk, "duration_minutes": service.duration_minutes},
        "staff": staff_ids,
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


if __name__ == "__main__":
    main()
