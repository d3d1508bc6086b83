"""Fuzz every operation of ``/api/schema/`` as a signed-in manager (issue 10).

Schemathesis reads the schema from the app itself and sends the generated requests
through the app's WSGI handler — the production path, 500 handler included — on the
test's database connection, inside its transaction (PostgreSQL, row-level security on).
Every answer must be documented, match its schema and content type, never be a 5xx, and
every 4xx must carry ``{"error": {"code", "message"}}``. A refused request changes no
rows; another company's id is never reachable.

Bounded and deterministic: ``MAX_EXAMPLES`` per operation, derandomized, no example
database. Throttles keep counting but with rates no fuzzer reaches (see
``_generous_throttles``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.validation import validate_schema
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from rest_framework.throttling import SimpleRateThrottle
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from bookings.models import Appointment, AppointmentHistory, Customer, Service, StaffMember
from tenants.context import all_tenants, tenant_context
from tenants.models import Branch, Role
from tests.conftest import Salon, World, make_salon, token_client
from tests.factories import AppointmentFactory, MembershipFactory

MAX_EXAMPLES = 30

application = WSGIHandler()
# Loads /api/schema/ through the app and checks it is a valid OpenAPI document.
schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


# --- checks -----------------------------------------------------------------------------


@schemathesis.check
def error_body_has_code(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every 4xx answers ``{"error": {"code": "<non-empty string>", "message": "..."}}``."""
    if 400 <= response.status_code < 500:
        body = response.json()
        error = body.get("error") if isinstance(body, dict) else None
        assert isinstance(error, dict), f"no error object: {body!r}"
        assert isinstance(error.get("code"), str), f"error.code is not a string: {body!r}"
        assert error["code"], f"empty error.code: {body!r}"
        assert isinstance(error.get("message"), str), f"error.message missing: {body!r}"
    return None


@schemathesis.check
def no_traceback(ctx: Any, response: Any, case: Any) -> bool | None:
    assert b"Traceback" not in response.content, "a response carries a traceback"
    return None


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    error_body_has_code,
    no_traceback,
]


# --- the fuzzer's world -----------------------------------------------------------------


@pytest.fixture
def _in_process_requests() -> Iterator[None]:
    """Requests run on the test's connection, inside its transaction: as Django's test
    client does, keep the request signals from closing that connection."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def _generous_throttles() -> Iterator[None]:
    """Throttles still run (and count in Redis) but never answer 429 here: a fuzzer out
    of budget would see nothing but 429s. DRF binds the rates to the throttle class at
    import, so ``override_settings(REST_FRAMEWORK=...)`` would not reach them; the rates
    are patched where DRF reads them. 429 itself is covered by test_booking_api."""
    rates = {"user": "1000000/min", "company": "1000000/min"}
    with mock.patch.dict(SimpleRateThrottle.THROTTLE_RATES, rates):
        yield


KIND_OF_FIELD = {
    "service": "service",
    "services": "service",
    "staff": "staff",
    "customer": "customer",
    "branch": "branch",
}
KIND_OF_PATH = {
    "/api/v1/appointments/{id}": "appointment",
    "/api/v1/customers/{id}": "customer",
    "/api/v1/services/{id}": "service",
    "/api/v1/staff/{id}": "staff",
}


class Ids:
    """Real values of the seeded salon for the fuzzer to use besides random ones: ids of
    company a (the manager's), ids of company b (must never be reachable), free, taken
    and unbookable times, bookable dates."""

    def __init__(self, world: World, salon: Salon) -> None:
        with tenant_context(salon.company):
            appointments = [
                AppointmentFactory(
                    branch=salon.branch,
                    staff=salon.staff,
                    service=salon.service,
                    customer=salon.customer,
                    start=salon.at(hour),
                    end=salon.at(hour) + timedelta(minutes=30),
                ).pk
                for hour in (10, 11, 12)
            ]
        self.own: dict[str, list[int]] = {
            "appointment": appointments,
            "customer": [salon.customer.pk],
            "service": [salon.service.pk],
            "staff": [salon.staff.pk, salon.other_staff.pk],
            "branch": [salon.branch.pk],
        }
        b = world.rows["b"]
        self.foreign: dict[str, int] = {
            "appointment": b[Appointment].pk,
            "customer": b[Customer].pk,
            "service": b[Service].pk,
            "staff": b[StaffMember].pk,
            "branch": b[Branch].pk,
        }
        past = salon.day - timedelta(days=10)
        self.starts = [
            salon.at(9).isoformat(),  # free
            salon.at(10).isoformat(),  # taken by a seeded appointment
            salon.at(13, 30).isoformat(),  # free
            salon.at(16, 30).isoformat(),  # the day's last slot
            salon.at(3).isoformat(),  # outside working hours
            salon.at(10, day=past).isoformat(),  # in the past
        ]
        self.dates = [salon.day.isoformat(), (salon.day + timedelta(days=1)).isoformat()]
        self.company = world.a.slug


# Hypothesis leans towards a strategy's simplest value (the first of sampled_from), so
# the common choice comes first.
LIKELY = st.sampled_from([True] * 7 + [False])
SOMETIMES = st.sampled_from([False, False, False, True])
PHONES = st.integers(10_000_000, 99_999_999).map(lambda n: f"+49151{n}")


class Steering:
    """Steer positive cases towards real rows, so operations get past "not found" into
    their real work (booking, moving, cancelling, idempotent replays); remember whether
    a case names another company's row. Negative cases are left as generated."""

    def __init__(self, ids: Ids, data: st.DataObject) -> None:
        self.ids = ids
        self.data = data
        self.foreign = False

    def steer(self, case: Any) -> None:
        if case.meta is None or case.meta.generation.mode != GenerationMode.POSITIVE:
            return
        draw = self.data.draw
        if "X-Company" in case.headers and draw(LIKELY):
            case.headers["X-Company"] = self.ids.company
        if "Idempotency-Key" in case.headers and draw(SOMETIMES):
            # A small pool of keys: replays (same body) and 422s (another body).
            case.headers["Idempotency-Key"] = draw(st.sampled_from(["key-1", "key-2"]))
        route = case.path.rstrip("/").removesuffix("/cancel").removesuffix("/reschedule")
        kind = KIND_OF_PATH.get(route)
        if kind and draw(LIKELY):
            case.path_parameters["id"] = self._id(kind)
        if isinstance(case.query, dict):
            self._fields(case.query, as_text=True)
        if isinstance(case.body, dict):
            self._fields(case.body, as_text=False)

    def _id(self, kind: str) -> int:
        own, theirs = self.ids.own[kind], self.ids.foreign[kind]
        chosen: int = self.data.draw(st.sampled_from([*own, *own, *own, theirs]))
        self.foreign |= chosen == theirs
        return chosen

    def _fields(self, container: dict[str, Any], as_text: bool) -> None:
        draw = self.data.draw
        for name, value in list(container.items()):
            if isinstance(value, dict):
                self._fields(value, as_text)
                continue
            if isinstance(value, list) or not draw(LIKELY):
                continue
            new: Any
            if name in KIND_OF_FIELD:
                new = self._id(KIND_OF_FIELD[name])
            elif name == "start":
                new = draw(st.sampled_from(self.ids.starts))
            elif name in ("date", "date_to"):
                new = draw(st.sampled_from(self.ids.dates))
            elif name == "phone":
                new = draw(PHONES)
            else:
                continue
            container[name] = str(new) if as_text else new


def _rows() -> dict[str, int]:
    with all_tenants("test: count rows"):
        return {
            "appointments": Appointment.objects.count(),
            "customers": Customer.objects.count(),
            "history": AppointmentHistory.objects.count(),
        }


@pytest.fixture
def manager_headers(world: World) -> dict[str, str]:
    manager = MembershipFactory(company=world.a, role=Role.MANAGER, user__username="fuzzer").user
    token, _ = Token.objects.get_or_create(user=manager)
    return {"Authorization": f"Token {token.key}"}


@pytest.fixture
def ids(world: World) -> Ids:
    return Ids(world, make_salon(world.a))


# --- the fuzzer -------------------------------------------------------------------------


@pytest.mark.usefixtures("_in_process_requests", "_generous_throttles")
@schema.parametrize()
@schema.given(data=st.data())
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    # The fixtures (company, salon, token) are made once per operation and shared by its
    # examples on purpose: state builds up as it would in a real company.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_operation(
    case: Any, data: st.DataObject, manager_headers: dict[str, str], ids: Ids
) -> None:
    steering = Steering(ids, data)
    steering.steer(case)
    before = _rows()
    response = case.call(headers=manager_headers)
    case.validate_response(response, checks=CHECKS, headers=manager_headers)
    if 400 <= response.status_code < 500:
        assert _rows() == before, f"a refused request changed data: {response.text[:300]}"
    if steering.foreign:
        assert 400 <= response.status_code < 500, "another company's row was reachable"


# --- every operation wants credentials --------------------------------------------------

OPERATIONS = [result.ok() for result in schema.get_all_operations()]


@pytest.mark.usefixtures("_in_process_requests")
@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda operation: operation.label)
@pytest.mark.parametrize("authorization", [None, "Token not-a-real-token"], ids=["none", "bad"])
def test_every_operation_wants_credentials(
    db: Any, operation: Any, authorization: str | None
) -> None:
    case = operation.Case(path_parameters={"id": 1} if "{id}" in operation.path else {})
    headers = {"Authorization": authorization} if authorization else {}
    response = case.call(headers=headers)
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "not_authenticated"
    assert "Token" in response.headers.get("www-authenticate", [""])[0]
    case.validate_response(response, checks=CHECKS)


def test_the_schema_is_valid_openapi_3(world: World) -> None:
    response = token_client(world.owner_a).get("/api/schema/", {"format": "json"})
    document = response.json()
    assert document["openapi"].startswith("3.")
    validate_schema(document)


# --- regressions the fuzzer found -------------------------------------------------------


@pytest.mark.parametrize(("hour", "status"), [(3, 400), (10, 409)], ids=["closed", "taken"])
def test_a_refused_booking_leaves_no_new_customer(
    world: World, salon: Salon, hour: int, status: int
) -> None:
    client = token_client(world.owner_a)
    taken = {"service": salon.service.pk, "staff": salon.staff.pk, "start": salon.at(10)}
    assert (
        client.post(
            "/api/v1/appointments/", {**taken, "customer": salon.customer.pk}, format="json"
        ).status_code
        == 201
    )
    before = _rows()
    body = {
        "service": salon.service.pk,
        "staff": salon.staff.pk,
        "start": salon.at(hour).isoformat(),
        "customer": {"name": "New Caller", "phone": "+4915199999999"},
    }
    response = client.post("/api/v1/appointments/", body, format="json")
    assert response.status_code == status, response.content
    assert _rows() == before


@pytest.mark.parametrize(
    ("value", "status"),
    [
        ("2026-01-01T10:00:00+23:30", 200),  # Python's offsets reach ±23:59, PostgreSQL's ±15:59
        ("2026-01-01T10:00:00-16:00", 200),
        ("9999-12-31T23:00:00-05:00", 400),  # has no UTC
        ("0001-01-01T00:30:00+01:00", 400),
    ],
)
def test_appointment_filters_take_any_offset(world: World, value: str, status: int) -> None:
    response = token_client(world.owner_a).get("/api/v1/appointments/", {"start_after": value})
    assert response.status_code == status, response.content


def test_booking_bodies_are_json_only(world: World, salon: Salon) -> None:
    body = {"service": salon.service.pk, "staff": salon.staff.pk, "start": salon.at(9)}
    response = token_client(world.owner_a).post("/api/v1/appointments/", body)  # multipart
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "validation_error"
