"""The chaos company on top of ``seed_demo --company chaos``: ``python -m chaos.setup_data``.

Run once per run (a fresh database), as the app role, after ``seed_demo``. It adds what
the drills need and prints it as JSON (no secrets beyond the seed's):

- four staff members working every day 00:00-23:59 (Europe/Berlin), each with two
  services of its own, both kept in Cal.com: ``Chaos Cut k`` (30 min) and
  ``Chaos Colour k`` (90 min + 15 min buffer, 20.00 deposit, so Stripe is called too).
  One Cal.com event type per service, created at the simulator with the company's key:
  the simulator refuses overlapping bookings per event type, so per-staff event types
  make its refusals mirror ours.
- Cal.com and Stripe connected with simulator keys (``*_API_BASE`` point there).
- 40 confirmed appointments far ahead (days 300-309, 12:00 Cut) that the Stripe traffic
  pays deposits for (``payment_intent.succeeded`` → a ``Payment`` each).
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from chaos.config import CALCOM_KEY, COMPANY_SLUG, STRIPE_KEY

TIMEZONE = "Europe/Berlin"
STAFF_COUNT = 4
SHIFT = (time(0, 0), time(23, 59))
TARGET_DAYS = range(300, 310)
TARGET_PHONE = "+4917000000{:03d}"


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "askpro.settings")
    import django

    django.setup()
    json.dump(setup(os.environ["CALCOM_API_BASE"]), sys.stdout)
    sys.stdout.write("\n")


def _event_type(calcom_base: str, title: str, minutes: int) -> int:
    request = urllib.request.Request(  # noqa: S310 -- the simulator on loopback
        f"{calcom_base}/event-types",
        data=json.dumps(
            {"title": title, "slug": title.lower().replace(" ", "-"), "lengthInMinutes": minutes}
        ).encode(),
        headers={"Authorization": f"Bearer {CALCOM_KEY}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        body = json.loads(response.read())
    data = body.get("data", body)
    return int(data["id"])


def setup(calcom_base: str) -> dict[str, Any]:
    from django.db import transaction

    from integrations.credentials import connect
    from tenants.context import tenant_context
    from tenants.models import Branch, Company

    company = Company.objects.get(slug=COMPANY_SLUG)
    with transaction.atomic(), tenant_context(company):
        branch = Branch.objects.get(name="Mitte")
        connect("calcom", CALCOM_KEY)
        connect("stripe", STRIPE_KEY)
        staff = [_staff(branch, calcom_base, k) for k in range(1, STAFF_COUNT + 1)]
    with tenant_context(company):
        targets = _targets(branch, staff)
    return {
        "company_id": company.pk,
        "branch_id": branch.pk,
        "timezone": TIMEZONE,
        "staff": staff,
        "targets": targets,
    }


def _staff(branch: Any, calcom_base: str, k: int) -> dict[str, Any]:
    from bookings.models import Service, StaffMember, StaffService, Weekday, WorkingHours

    member, _ = StaffMember.objects.update_or_create(
        branch=branch, name=f"Chaos Staff {k}", defaults={"active": True}
    )
    for weekday in Weekday.values:
        WorkingHours.objects.update_or_create(
            staff=member,
            weekday=weekday,
            defaults={"start": SHIFT[0], "end": SHIFT[1], "break_start": None, "break_end": None},
        )
    services = {}
    for role, minutes, buffer, deposit in (("cut", 30, 0, "0"), ("colour", 90, 15, "20.00")):
        title = f"Chaos {role.title()} {k}"
        service, _ = Service.objects.update_or_create(
            name=title,
            defaults={
                "duration_minutes": minutes,
                "slot_interval_minutes": 30,
                "min_notice_minutes": 0,
                "horizon_days": 366,
                "buffer_minutes": buffer,
                "deposit": Decimal(deposit),
                "price": Decimal("40.00"),
                "calcom_event_type_id": _event_type(calcom_base, title, minutes),
                "active": True,
            },
        )
        StaffService.objects.get_or_create(staff=member, service=service)
        services[role] = service.pk
    return {"id": member.pk, "cut": services["cut"], "colour": services["colour"]}


def _targets(branch: Any, staff: list[dict[str, Any]]) -> list[int]:
    """Confirmed appointments the deposits are paid for (not through the saga: no calendar)."""
    from bookings import services
    from bookings.models import Service, StaffMember

    tz = ZoneInfo(TIMEZONE)
    today = datetime.now(tz).date()
    ids = []
    n = 0
    for offset in TARGET_DAYS:
        day = today + timedelta(days=offset)
        for member in staff:
            n += 1
            customer = services.find_or_create_customer(
                f"Chaos Target {n}", TARGET_PHONE.format(n), "DE"
            )
            appointment = services.book_appointment(
                service=Service.objects.get(pk=member["cut"]),
                staff=StaffMember.objects.get(pk=member["id"]),
                start=datetime.combine(day, time(12, 0), tz),
                customer=customer,
                actor=services.Actor(kind="system"),
                notes="chaos:target",
            )
            ids.append(appointment.pk)
    return ids


if __name__ == "__main__":
    main()
