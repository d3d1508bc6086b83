"""Bad input on every endpoint: a clear 4xx with the error body, nothing changed, no 500."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from bookings.models import Appointment, Customer
from tenants.context import all_tenants
from tests.conftest import Salon, World, token_client

HUGE = "x" * 10_000
SOON_DATE = (timezone.localdate() + timedelta(days=30)).isoformat()
BEFORE_SOON = (timezone.localdate() + timedelta(days=29)).isoformat()
SQL = "'; DROP TABLE bookings_appointment; --\"' OR 1=1"
NAIVE = "2030-01-07T10:00:00"
GOOD_START = "START"  # replaced by a free slot of the salon


def booking(**overrides: Any) -> dict[str, Any]:
    return {
        "service": "SERVICE",
        "staff": "STAFF",
        "start": GOOD_START,
        "customer": {"name": "A Caller", "phone": "+4915112345670"},
        **overrides,
    }


APPOINTMENT_BODIES: list[Any] = [
    {},
    [],
    "just a string",
    booking(service="abc"),
    booking(service=10**20),
    booking(service=-1),
    booking(service=None),
    booking(service=True),
    booking(staff=999_999_999),
    booking(start="tomorrow"),
    booking(start="2030-13-45T10:00:00+01:00"),
    booking(start=NAIVE),
    booking(start="9999-12-31T10:00:00+01:00"),
    booking(start="0001-01-01T10:00:00+00:00"),
    booking(start=12345),
    booking(customer="someone"),
    booking(customer=999_999_999),
    booking(customer=True),
    booking(customer={"name": HUGE, "phone": "+4915112345670"}),
    booking(customer={"name": SQL, "phone": SQL}),
    booking(customer={"name": "No Phone"}),
    booking(customer={"name": "A", "phone": "anonymous"}),
    booking(customer={"name": "A", "phone": "+4915112345670", "email": "not-an-email"}),
    booking(notes=HUGE),
]


def _fill(body: Any, salon: Salon) -> Any:
    if not isinstance(body, dict):
        return body
    ids = {"SERVICE": salon.service.pk, "STAFF": salon.staff.pk, "START": salon.at(10).isoformat()}
    return {k: ids.get(v, v) if isinstance(v, str) else v for k, v in body.items()}


def _counts() -> tuple[int, int]:
    with all_tenants("test: count rows"):
        return Appointment.objects.count(), Customer.objects.count()


def assert_clean_4xx(response: Any) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
    error = response.json()["error"]
    assert error["code"]
    assert error["message"]
    assert b"Traceback" not in response.content


@pytest.mark.parametrize("body", APPOINTMENT_BODIES, ids=lambda b: repr(b)[:60])
def test_bad_bookings_are_refused_cleanly(world: World, salon: Salon, body: Any) -> None:
    before = _counts()
    response = token_client(world.owner_a).post(
        "/api/v1/appointments/", _fill(body, salon), format="json"
    )
    assert_clean_4xx(response)
    assert _counts() == before


@pytest.mark.parametrize(
    "raw", [b"{{{", b'{"service": ', b"\xff\xfe", b"null", b"1e999999"], ids=repr
)
def test_unparseable_bodies_are_400(world: World, raw: bytes) -> None:
    response = token_client(world.owner_a).post(
        "/api/v1/appointments/", raw, content_type="application/json"
    )
    assert_clean_4xx(response)


@pytest.mark.parametrize(
    ("action", "body"),
    [
        ("reschedule", {}),
        ("reschedule", {"start": NAIVE}),
        ("reschedule", {"start": "2027-01-05T10:00:00+01:00", "staff": "x"}),
        ("reschedule", {"start": SQL}),
        ("cancel", {"reason": HUGE}),
        ("cancel", {"reason": ["a", "b"]}),
    ],
    ids=repr,
)
def test_bad_actions_are_refused_cleanly(world: World, action: str, body: dict[str, Any]) -> None:
    appointment = world.rows["a"][Appointment]
    response = token_client(world.owner_a).post(
        f"/api/v1/appointments/{appointment.pk}/{action}/", body, format="json"
    )
    assert_clean_4xx(response)
    with all_tenants("test"):
        fresh = Appointment.objects.get(pk=appointment.pk)
    assert (fresh.start, fresh.status) == (appointment.start, appointment.status)


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"service": "abc", "date": SOON_DATE},
        {"service": "SERVICE", "date": "2027-02-30"},
        {"service": "SERVICE", "date": "0001-01-01"},
        {"service": "SERVICE", "date": "9999-12-31"},
        {"service": "SERVICE", "date": SOON_DATE, "date_to": BEFORE_SOON},
        {"service": "SERVICE", "date": SOON_DATE, "staff": str(10**20)},
        {"service": str(10**20), "date": SOON_DATE},
        {"service": SQL, "date": SQL},
    ],
    ids=repr,
)
def test_bad_availability_queries_are_400(
    world: World, salon: Salon, query: dict[str, str]
) -> None:
    query = {k: str(salon.service.pk) if v == "SERVICE" else v for k, v in query.items()}
    response = token_client(world.owner_a).get("/api/v1/availability/", query)
    assert_clean_4xx(response)


@pytest.mark.parametrize(
    "body",
    [
        {"name": HUGE, "phone": "+4915112345671"},
        {"name": "A", "phone": "anonymous"},
        {"name": "A", "phone": SQL},
        {"name": "A", "phone": "+4915112345671", "email": "nope"},
        {"name": "", "phone": "+4915112345671"},
        {"phone": "+4915112345671"},
    ],
    ids=lambda b: repr(b)[:60],
)
def test_bad_customers_are_refused_cleanly(world: World, body: dict[str, Any]) -> None:
    before = _counts()
    assert_clean_4xx(token_client(world.owner_a).post("/api/v1/customers/", body, format="json"))
    assert _counts() == before


def test_a_duplicate_phone_is_a_validation_error(world: World) -> None:
    existing = world.rows["a"][Customer]
    response = token_client(world.owner_a).post(
        "/api/v1/customers/", {"name": "Twin", "phone": existing.phone}, format="json"
    )
    assert_clean_4xx(response)
    assert "phone" in response.json()["error"]["fields"]


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/appointments/?status=bogus",
        "/api/v1/appointments/?staff=abc",
        "/api/v1/appointments/?start_after=garbage",
        "/api/v1/appointments/?date_from=2027-02-30",
        "/api/v1/appointments/?page=999",
        "/api/v1/appointments/abc/",
        f"/api/v1/appointments/{10**20}/",
        "/api/v1/services/?active=maybe",
    ],
)
def test_bad_queries_and_ids_are_4xx(world: World, url: str) -> None:
    assert_clean_4xx(token_client(world.owner_a).get(url))


def test_an_idempotency_key_that_is_too_long_is_400(world: World, salon: Salon) -> None:
    response = token_client(world.owner_a).post(
        "/api/v1/appointments/",
        _fill(booking(), salon),
        format="json",
        HTTP_IDEMPOTENCY_KEY="k" * 500,
    )
    assert_clean_4xx(response)
