"""seed_demo: idempotent, same credentials every run, a second company kept apart."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.test import RequestFactory
from rest_framework.test import APIClient

from tenants.context import all_tenants


def seed(*args: str) -> dict[str, Any]:
    out = StringIO()
    call_command("seed_demo", "--json", *args, stdout=out)
    return json.loads(out.getvalue())


@pytest.mark.django_db
def test_every_run_prints_the_same_credentials_and_creates_nothing_new() -> None:
    from bookings.models import Service, StaffMember, WorkingHours

    first, second = seed(), seed()
    assert first == second
    with all_tenants("test: count demo rows"):
        assert Service.objects.count() == len(first["services"])
        assert StaffMember.objects.count() == len(first["staff"]) == 2
        assert WorkingHours.objects.count() == 2 * 5


@pytest.mark.django_db
def test_the_demo_manager_can_log_in_and_is_not_a_superuser() -> None:
    data = seed()
    request = RequestFactory().post("/admin/login/")  # django-axes wants the request
    user = authenticate(
        request, username=data["admin"]["username"], password=data["admin"]["password"]
    )
    assert user is not None
    assert not user.is_superuser
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {data['api_token']}")
    me = client.get("/api/v1/me/").json()
    assert me["company"]["slug"] == "demo"
    assert me["role"] == "manager"


@pytest.mark.django_db
def test_the_demo_staff_can_be_booked_on_a_weekday() -> None:
    from datetime import timedelta

    from django.utils import timezone

    data = seed()
    day = timezone.localdate() + timedelta(days=7)
    while day.weekday() != 2:  # a Wednesday
        day += timedelta(days=1)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {data['api_token']}")
    haircut = next(s for s in data["services"] if s["duration_minutes"] == 30)
    slots = client.get(
        "/api/v1/availability/", {"service": haircut["id"], "date": day.isoformat()}
    ).json()["slots"]
    assert slots[0]["start"].startswith(f"{day.isoformat()}T09:00:00+")
    assert slots[-1]["end"].startswith(f"{day.isoformat()}T17:00:00+")


@pytest.mark.django_db
def test_another_slug_gives_a_separate_company() -> None:
    demo, other = seed(), seed("--company", "acme")
    assert other["company"]["id"] != demo["company"]["id"]
    assert other["api_token"] != demo["api_token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {other['api_token']}")
    ids = {s["id"] for s in client.get("/api/v1/services/").json()["results"]}
    assert ids == {s["id"] for s in other["services"]}


@pytest.mark.django_db
def test_the_demo_webhooks_accept_signed_deliveries() -> None:
    from django.test import Client

    from tests import signing

    data = seed()
    assert data == seed()
    hooks = data["webhooks"]
    assert hooks["stripe"]["secret"].startswith("whsec_")
    assert hooks["retell"]["agent_id"].startswith("agent_")
    body = json.dumps(signing.fixture("stripe/payment_intent.succeeded")).encode()
    response = Client().post(
        hooks["stripe"]["path"],
        body,
        content_type="application/json",
        **signing.signed_headers("stripe", body, hooks["stripe"]["secret"]),
    )
    assert response.status_code == 202
