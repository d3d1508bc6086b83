"""Personas over every API endpoint: another company's objects are never listed, always 404."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from bookings.models import Appointment, Customer, Service, StaffMember
from tests.conftest import World, token_client

SOON_DATE = (timezone.localdate() + timedelta(days=30)).isoformat()
SOON = f"{SOON_DATE}T10:00:00+01:00"

RESOURCES = {
    "services": Service,
    "staff": StaffMember,
    "customers": Customer,
    "appointments": Appointment,
}


@pytest.mark.parametrize("resource", list(RESOURCES))
@pytest.mark.parametrize("persona", ["owner_a", "staff_a"])
def test_lists_never_show_another_company(world: World, resource: str, persona: str) -> None:
    model = RESOURCES[resource]
    response = token_client(getattr(world, persona)).get(f"/api/v1/{resource}/")
    assert response.status_code == 200
    ids = {row["id"] for row in response.json()["results"]}
    assert world.rows["a"][model].pk in ids
    assert world.rows["b"][model].pk not in ids


@pytest.mark.parametrize("resource", list(RESOURCES))
def test_another_companys_object_is_404(world: World, resource: str) -> None:
    theirs = world.rows["b"][RESOURCES[resource]]
    client = token_client(world.owner_a)
    response = client.get(f"/api/v1/{resource}/{theirs.pk}/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    mine = world.rows["a"][RESOURCES[resource]]
    assert client.get(f"/api/v1/{resource}/{mine.pk}/").status_code == 200


@pytest.mark.parametrize(("action", "body"), [("cancel", {}), ("reschedule", {"start": SOON})])
def test_actions_on_another_companys_appointment_are_404(
    world: World, action: str, body: dict[str, Any]
) -> None:
    theirs = world.rows["b"][Appointment]
    response = token_client(world.owner_a).post(
        f"/api/v1/appointments/{theirs.pk}/{action}/", body, format="json"
    )
    assert response.status_code == 404
    theirs_status = theirs.status
    from tenants.context import tenant_context

    with tenant_context(world.b):
        assert Appointment.objects.get(pk=theirs.pk).status == theirs_status


def test_a_customer_of_another_company_cannot_be_changed(world: World) -> None:
    theirs = world.rows["b"][Customer]
    response = token_client(world.owner_a).patch(
        f"/api/v1/customers/{theirs.pk}/", {"name": "stolen"}, format="json"
    )
    assert response.status_code == 404


@pytest.mark.parametrize("field", ["service", "staff", "customer"])
def test_booking_with_another_companys_objects_is_refused(world: World, field: str) -> None:
    mine = {
        "service": world.rows["a"][Service].pk,
        "staff": world.rows["a"][StaffMember].pk,
        "customer": world.rows["a"][Customer].pk,
        "start": SOON,
    }
    theirs = {
        "service": world.rows["b"][Service].pk,
        "staff": world.rows["b"][StaffMember].pk,
        "customer": world.rows["b"][Customer].pk,
    }
    response = token_client(world.owner_a).post(
        "/api/v1/appointments/", {**mine, field: theirs[field]}, format="json"
    )
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_availability_of_another_companys_service_is_refused(world: World) -> None:
    response = token_client(world.owner_a).get(
        "/api/v1/availability/",
        {"service": world.rows["b"][Service].pk, "date": SOON_DATE},
    )
    assert response.status_code == 400
    assert "service" in response.json()["error"]["fields"]


def test_the_outsider_sees_only_their_own(world: World) -> None:
    response = token_client(world.outsider).get("/api/v1/appointments/")
    ids = {row["id"] for row in response.json()["results"]}
    assert ids == {world.rows["b"][Appointment].pk}


def test_a_member_of_no_company_gets_404(world: World) -> None:
    from tests.factories import UserFactory

    response = token_client(UserFactory(username="drifter")).get("/api/v1/services/")
    assert response.status_code == 404
