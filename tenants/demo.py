"""Demo data beyond the company itself: services, staff and their weekly hours."""

from __future__ import annotations

from datetime import time
from decimal import Decimal
from typing import Any

from tenants.models import Branch, Company

DEMO_SERVICES = [
    # name, minutes, price, deposit, buffer
    ("Haircut", 30, Decimal("35.00"), Decimal("0"), 0),
    ("Colouring", 90, Decimal("95.00"), Decimal("20.00"), 15),
    ("Beard trim", 15, Decimal("15.00"), Decimal("0"), 0),
]
DEMO_STAFF = ["Anna Becker", "Jonas Weber"]
WEEKDAYS = range(5)  # Monday to Friday, 09:00-17:00 branch time


def seed_company_data(company: Company, branch: Branch) -> dict[str, Any]:
    """Create (once) the demo's services and staff inside the bound tenant."""
    from bookings.models import Service, StaffMember, StaffService, WorkingHours

    services = []
    for name, minutes, price, deposit, buffer in DEMO_SERVICES:
        service, _ = Service.objects.get_or_create(
            name=name,
            defaults={
                "duration_minutes": minutes,
                "slot_interval_minutes": 15,
                "price": price,
                "deposit": deposit,
                "buffer_minutes": buffer,
                "min_notice_minutes": 60,
            },
        )
        services.append(service)
    staff = []
    for name in DEMO_STAFF:
        member, created = StaffMember.objects.get_or_create(branch=branch, name=name)
        if created:
            for service in services:
                StaffService.objects.create(staff=member, service=service)
            WorkingHours.objects.bulk_create(
                WorkingHours(staff=member, weekday=day, start=time(9), end=time(17))
                for day in WEEKDAYS
            )
        staff.append(member)
    return {
        "webhooks": seed_webhooks(branch),
        "services": [
            {"id": s.pk, "name": s.name, "duration_minutes": s.duration_minutes} for s in services
        ],
        "staff": [{"id": m.pk, "name": m.name} for m in staff],
    }


def seed_webhooks(branch: Branch) -> dict[str, Any]:
    """The company's three webhook endpoints and the branch's Retell agent id (once)."""
    import secrets

    from webhooks.models import WebhookEndpoint

    if not branch.retell_agent_id:
        branch.retell_agent_id = f"agent_{secrets.token_hex(12)}"
        branch.save(update_fields=["retell_agent_id"])
    made = {
        "stripe": lambda: f"whsec_{secrets.token_urlsafe(24)}",
        "calcom": lambda: secrets.token_urlsafe(24),
        "retell": lambda: f"key_{secrets.token_hex(16)}",
    }
    endpoints = {
        provider: WebhookEndpoint.objects.get_or_create(
            provider=provider, defaults={"secret": make()}
        )[0]
        for provider, make in made.items()
    }
    return {
        "stripe": {"path": endpoints["stripe"].path, "secret": endpoints["stripe"].secret},
        "calcom": {"path": endpoints["calcom"].path, "secret": endpoints["calcom"].secret},
        "retell": {
            "path": endpoints["retell"].path,
            "api_key": endpoints["retell"].secret,
            "agent_id": branch.retell_agent_id,
        },
    }
