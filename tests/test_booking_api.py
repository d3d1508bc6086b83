"""The REST API: booking, moving, cancelling, availability, idempotency, throttles."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection, connections
from rest_framework.test import APIClient

from bookings.models import Appointment, Customer
from tenants.context import tenant_context
from tests.conftest import Salon, make_salon, token_client

URL = "/api/v1/appointments/"


def payload(salon: Salon, hour: int = 10, **overrides: Any) -> dict[str, Any]:
    body = {
        "service": salon.service.pk,
        "staff": salon.staff.pk,
        "start": salon.at(hour).isoformat(),
        "customer": {"name": "Max Mustermann", "phone": "030 1234567"},
    }
    return {**body, **overrides}


@pytest.fixture
def api(world: Any) -> APIClient:
    return token_client(world.owner_a)


def test_booking_returns_201_with_the_branch_offset(api: APIClient, salon: Salon) -> None:
    response = api.post(URL, payload(salon), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "confirmed"
    assert body["start"] == salon.at(10).isoformat()
    assert body["start"].endswith(("+01:00", "+02:00"))
    assert set(body) >= {"id", "start", "end", "status"}


def test_a_german_national_number_is_stored_as_e164(api: APIClient, salon: Salon) -> None:
    api.post(URL, payload(salon), format="json")
    with tenant_context(salon.company):
        assert Customer.objects.filter(phone="+49301234567", name="Max Mustermann").exists()


def test_a_known_customer_can_be_given_by_id(api: APIClient, salon: Salon) -> None:
    response = api.post(URL, payload(salon, customer=salon.customer.pk), format="json")
    assert response.status_code == 201
    assert response.json()["customer"] == salon.customer.pk


def test_a_withheld_caller_id_is_not_a_phone(api: APIClient, salon: Salon) -> None:
    response = api.post(
        URL, payload(salon, customer={"name": "X", "phone": "anonymous"}), format="json"
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert "phone" in error["fields"]["customer"]
    with tenant_context(salon.company):
        assert not Appointment.objects.filter(start=salon.at(10)).exists()


def test_a_datetime_without_offset_is_refused(api: APIClient, salon: Salon) -> None:
    naive = salon.at(10).replace(tzinfo=None).isoformat()
    response = api.post(URL, payload(salon, start=naive), format="json")
    assert response.status_code == 400
    assert "offset" in response.json()["error"]["fields"]["start"][0]


def test_a_taken_slot_is_409_slot_taken(api: APIClient, salon: Salon) -> None:
    assert api.post(URL, payload(salon), format="json").status_code == 201
    response = api.post(URL, payload(salon), format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "slot_taken"


def test_cancel_and_reschedule_keep_the_id(api: APIClient, salon: Salon) -> None:
    created = api.post(URL, payload(salon), format="json").json()
    moved = api.post(
        f"{URL}{created['id']}/reschedule/", {"start": salon.at(15).isoformat()}, format="json"
    )
    assert moved.status_code == 200, moved.json()
    assert moved.json()["id"] == created["id"]
    assert moved.json()["start"] == salon.at(15).isoformat()
    cancelled = api.post(f"{URL}{created['id']}/cancel/", {"reason": "flu"}, format="json")
    assert cancelled.json()["status"] == "cancelled"
    assert api.post(URL, payload(salon, hour=15), format="json").status_code == 201


def test_availability_lists_free_slots_per_staff(api: APIClient, salon: Salon) -> None:
    api.post(URL, payload(salon), format="json")
    response = api.get(
        "/api/v1/availability/", {"service": salon.service.pk, "date": salon.day.isoformat()}
    )
    assert response.status_code == 200
    slots = response.json()["slots"]
    mine = [s["start"] for s in slots if s["staff"] == salon.staff.pk]
    other = [s["start"] for s in slots if s["staff"] == salon.other_staff.pk]
    assert len(other) == 16
    assert len(mine) == 15
    assert salon.at(10).isoformat() not in mine


def test_availability_refuses_more_than_31_days(api: APIClient, salon: Salon) -> None:
    from datetime import timedelta

    response = api.get(
        "/api/v1/availability/",
        {
            "service": salon.service.pk,
            "date": salon.day.isoformat(),
            "date_to": (salon.day + timedelta(days=31)).isoformat(),
        },
    )
    assert response.status_code == 400
    assert "date_to" in response.json()["error"]["fields"]


def test_the_same_idempotency_key_and_body_replays_the_answer(api: APIClient, salon: Salon) -> None:
    first = api.post(URL, payload(salon), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    second = api.post(URL, payload(salon), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second["Idempotent-Replayed"] == "true"
    with tenant_context(salon.company):
        assert Appointment.objects.filter(start=salon.at(10)).count() == 1


def test_the_same_key_with_another_body_is_422(api: APIClient, salon: Salon) -> None:
    api.post(URL, payload(salon), format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    response = api.post(URL, payload(salon, hour=11), format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_mismatch"


def test_a_refusal_is_replayed_too(api: APIClient, salon: Salon) -> None:
    api.post(URL, payload(salon), format="json")
    first = api.post(URL, payload(salon), format="json", HTTP_IDEMPOTENCY_KEY="k-3")
    second = api.post(URL, payload(salon), format="json", HTTP_IDEMPOTENCY_KEY="k-3")
    assert first.status_code == second.status_code == 409


@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrency needs PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_a_concurrent_duplicate_is_409_request_in_progress(world: Any) -> None:
    from unittest import mock

    from bookings import services

    salon = make_salon(world.a)
    started, release = threading.Event(), threading.Event()
    real_book = services.book_appointment

    def slow_book(**kwargs: Any) -> Any:
        started.set()
        release.wait(10)
        return real_book(**kwargs)

    results: dict[str, Any] = {}

    def first() -> None:
        try:
            results["first"] = token_client(world.owner_a).post(
                URL, payload(salon), format="json", HTTP_IDEMPOTENCY_KEY="k-4"
            )
        finally:
            connections.close_all()

    with mock.patch.object(services, "book_appointment", slow_book):
        thread = threading.Thread(target=first)
        thread.start()
        assert started.wait(10)
        second = token_client(world.owner_a).post(
            URL, payload(salon), format="json", HTTP_IDEMPOTENCY_KEY="k-4"
        )
        release.set()
        thread.join()
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "request_in_progress"
    assert second["Retry-After"] == "1"
    assert results["first"].status_code == 201


@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrency needs PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_api_bookings_get_one_201_and_nineteen_409(world: Any) -> None:
    salon = make_salon(world.a)
    barrier = threading.Barrier(20)
    codes: list[tuple[int, str | None]] = []
    lock = threading.Lock()

    def attempt(n: int) -> None:
        client = token_client(world.owner_a)
        body = payload(salon, customer={"name": f"Caller {n}", "phone": f"+49151000000{n:02d}"})
        barrier.wait()
        try:
            response = client.post(URL, body, format="json")
            code = response.json().get("error", {}).get("code")
            with lock:
                codes.append((response.status_code, code))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes, key=str) == sorted([(201, None)] + [(409, "slot_taken")] * 19, key=str)
    # The nineteen refused callers left no customer behind: each new caller becomes a
    # customer inside the booking's transaction (before, those that passed the slot's
    # pre-check before the winner committed did).
    with tenant_context(world.a):
        assert Customer.objects.filter(phone__startswith="+49151000000").count() == 1


def test_a_refused_new_caller_leaves_no_customer(api: APIClient, salon: Salon) -> None:
    assert api.post(URL, payload(salon), format="json").status_code == 201
    stranger = {"name": "Erika Muster", "phone": "030 7654321"}
    response = api.post(URL, payload(salon, customer=stranger), format="json")
    assert response.status_code == 409
    with tenant_context(salon.company):
        assert not Customer.objects.filter(phone="+49307654321").exists()


def test_throttling_answers_429_with_retry_after(world: Any, salon: Salon) -> None:
    from unittest import mock

    from rest_framework.throttling import SimpleRateThrottle

    client = token_client(world.owner_a)
    with mock.patch.dict(SimpleRateThrottle.THROTTLE_RATES, {"user": "2/min"}):
        statuses = [client.get("/api/v1/services/").status_code for _ in range(3)]
        response = client.get("/api/v1/services/")
    assert statuses == [200, 200, 429]
    assert response.json()["error"]["code"] == "throttled"
    assert int(response["Retry-After"]) >= 1


def test_the_company_budget_is_shared_by_its_users(world: Any, salon: Salon) -> None:
    from unittest import mock

    from rest_framework.throttling import SimpleRateThrottle

    with mock.patch.dict(SimpleRateThrottle.THROTTLE_RATES, {"company": "2/min"}):
        owner, staff = token_client(world.owner_a), token_client(world.staff_a)
        statuses = [c.get("/api/v1/services/").status_code for c in (owner, staff, staff)]
        outsider = token_client(world.outsider).get("/api/v1/services/").status_code
    assert statuses == [200, 200, 429]
    assert outsider == 200


@pytest.mark.parametrize(
    "url", ["/api/v1/appointments/", "/api/v1/staff/", "/api/v1/services/", "/api/v1/customers/"]
)
def test_listing_costs_the_same_queries_whatever_the_page_size(
    api: APIClient, salon: Salon, url: str
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.factories import AppointmentFactory, CustomerFactory, StaffServiceFactory

    with tenant_context(salon.company):
        for _ in range(20):
            appointment = AppointmentFactory(customer=CustomerFactory())
            StaffServiceFactory(staff=appointment.staff, service=appointment.service)
    counts = []
    for size in (1, 20):
        with CaptureQueriesContext(connection) as queries:
            response = api.get(url, {"page_size": size})
        assert response.status_code == 200
        assert len(response.json()["results"]) == size
        counts.append(len(queries))
    assert counts[0] == counts[1], counts


def test_filters_narrow_the_list(api: APIClient, salon: Salon) -> None:
    api.post(URL, payload(salon), format="json")
    api.post(URL, payload(salon, staff=salon.other_staff.pk, hour=11), format="json")
    mine = api.get(URL, {"staff": salon.staff.pk, "date_from": salon.day.isoformat()}).json()
    assert [a["staff"] for a in mine["results"]] == [salon.staff.pk]
    none = api.get(URL, {"status": "cancelled", "date_from": salon.day.isoformat()}).json()
    assert none["results"] == []


def test_the_openapi_schema_describes_every_resource(api: APIClient) -> None:
    response = api.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for resource in ("services", "staff", "customers", "appointments", "availability"):
        assert f"/api/v1/{resource}/" in paths
    assert "/api/v1/appointments/{id}/reschedule/" in paths
    assert api.get("/api/docs/").status_code == 200
