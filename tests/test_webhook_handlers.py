"""Handlers against the providers' realistic payloads (../shared/fixtures), end to end:
signed delivery → stored → processed (on commit, as in production)."""

from __future__ import annotations

import itertools
import json
import threading
from typing import Any

import pytest
from django.db import connection, connections

from bookings.models import Appointment, AppointmentStatus
from tenants.context import all_tenants, tenant_context
from tests import signing
from tests.conftest import Salon, World
from tests.factories import AppointmentFactory, WebhookEndpointFactory
from webhooks.models import CallLog, Payment, WebhookEndpoint, WebhookEvent

SECRET = {"stripe": "whsec_h", "retell": "key_h", "calcom": "cal_h"}


@pytest.fixture
def hooks(world: World, salon: Salon) -> dict[str, WebhookEndpoint]:
    with tenant_context(world.a):
        WebhookEndpoint.objects.all().delete()
        return {p: WebhookEndpointFactory(provider=p, secret=s) for p, s in SECRET.items()}


def post(endpoint: WebhookEndpoint, payload: dict[str, Any], capture: Any) -> int:
    body = json.dumps(payload).encode()
    from django.test import Client

    with capture(execute=True):
        response = Client().post(
            endpoint.path,
            body,
            content_type="application/json",
            **signing.signed_headers(endpoint.provider, body, SECRET[endpoint.provider]),
        )
    return response.status_code


# --- Retell ---------------------------------------------------------------------------

CALL_EVENTS = ["call_started", "call_ended", "call_analyzed"]


def _call_state(world: World) -> dict[str, Any]:
    with tenant_context(world.a):
        log = CallLog.objects.get(call_id="call_4f7e2b9c1d0a8e6f5b3c2a19")
    return {
        k: getattr(log, k)
        for k in (
            "stage",
            "from_number",
            "to_number",
            "started_at",
            "ended_at",
            "duration_ms",
            "transcript",
            "summary",
            "sentiment",
            "successful",
            "branch_id",
            "customer_id",
            "appointment_id",
            "recording_url",
            "disconnection_reason",
        )
    }


@pytest.mark.parametrize("order", list(itertools.permutations(CALL_EVENTS)), ids="-".join)
def test_call_webhooks_in_any_order_end_in_one_complete_call_log(
    world: World,
    salon: Salon,
    hooks: Any,
    order: tuple[str, ...],
    django_capture_on_commit_callbacks: Any,
) -> None:
    with tenant_context(world.a):
        salon.branch.retell_agent_id = "agent_7c1e9b2f4a6d8e0c3b5a"
        salon.branch.save()
        caller = salon.customer  # +4915112345678, the fixture's caller
        booked = AppointmentFactory(
            customer=caller, idempotency_key="retell:call_4f7e2b9c1d0a8e6f5b3c2a19:1:x"
        )
    for name in order:
        assert (
            post(
                hooks["retell"],
                signing.fixture(f"retell/{name}"),
                django_capture_on_commit_callbacks,
            )
            == 202
        )
    state = _call_state(world)
    assert state["stage"] == 3
    assert (state["from_number"], state["to_number"]) == ("+4915112345678", "+493012345670")
    assert state["duration_ms"] == 108000
    assert state["summary"].startswith("Caller booked a haircut")
    assert state["sentiment"] == "Positive"
    assert state["successful"] is True
    assert state["transcript"].startswith("Agent: Guten Tag")
    assert (state["branch_id"], state["customer_id"], state["appointment_id"]) == (
        salon.branch.pk,
        caller.pk,
        booked.pk,
    )
    assert (state["ended_at"] - state["started_at"]).total_seconds() == 108


# --- Cal.com --------------------------------------------------------------------------


@pytest.fixture
def calendar(salon: Salon) -> Salon:
    with tenant_context(salon.company):
        salon.staff.calcom_user_id = 4021
        salon.staff.save()
        salon.service.calcom_event_type_id = 1187
        salon.service.save()
    return salon


def _calendar_appointments(salon: Salon) -> list[tuple[str | None, str, str]]:
    with tenant_context(salon.company):
        return [
            (a.calcom_uid, a.status, a.start.isoformat())
            for a in Appointment.objects.filter(source="calendar").order_by("pk")
        ]


def test_a_booking_made_in_the_calendar_becomes_an_appointment(
    calendar: Salon, hooks: Any, django_capture_on_commit_callbacks: Any
) -> None:
    assert (
        post(
            hooks["calcom"],
            signing.fixture("calcom/BOOKING_CREATED"),
            django_capture_on_commit_callbacks,
        )
        == 202
    )
    assert _calendar_appointments(calendar) == [
        ("bE3eTq2x9WvQm7N4cLpA1s", "confirmed", "2025-11-27T09:00:00+00:00")
    ]
    with tenant_context(calendar.company):
        appointment = Appointment.objects.get(calcom_uid="bE3eTq2x9WvQm7N4cLpA1s")
        assert appointment.staff_id == calendar.staff.pk
        assert appointment.customer.phone == "+4915112345678"


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        (
            ("CREATED", "RESCHEDULED", "CANCELLED"),
            [("kP9sLw3Rt6Yb2Nq8Xc5Vm1", "cancelled", "2025-11-28T13:00:00+00:00")],
        ),
        (
            ("CREATED", "RESCHEDULED"),
            [("kP9sLw3Rt6Yb2Nq8Xc5Vm1", "confirmed", "2025-11-28T13:00:00+00:00")],
        ),
        (
            ("RESCHEDULED", "CREATED"),
            [("kP9sLw3Rt6Yb2Nq8Xc5Vm1", "confirmed", "2025-11-28T13:00:00+00:00")],
        ),
        (
            ("CANCELLED", "RESCHEDULED", "CREATED"),
            [("kP9sLw3Rt6Yb2Nq8Xc5Vm1", "cancelled", "2025-11-28T13:00:00+00:00")],
        ),
    ],
    ids=lambda v: "-".join(v) if isinstance(v, tuple) else "",
)
def test_calendar_changes_end_right_in_any_order(
    calendar: Salon,
    hooks: Any,
    order: tuple[str, ...],
    expected: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    for trigger in order:
        post(
            hooks["calcom"],
            signing.fixture(f"calcom/BOOKING_{trigger}"),
            django_capture_on_commit_callbacks,
        )
    assert _calendar_appointments(calendar) == expected


def test_a_cancel_that_arrives_before_its_create_ends_cancelled(
    calendar: Salon, hooks: Any, django_capture_on_commit_callbacks: Any
) -> None:
    cancelled = signing.fixture("calcom/BOOKING_CANCELLED")
    cancelled["payload"]["uid"] = "bE3eTq2x9WvQm7N4cLpA1s"
    post(hooks["calcom"], cancelled, django_capture_on_commit_callbacks)
    post(
        hooks["calcom"],
        signing.fixture("calcom/BOOKING_CREATED"),
        django_capture_on_commit_callbacks,
    )
    assert _calendar_appointments(calendar) == [
        ("bE3eTq2x9WvQm7N4cLpA1s", "cancelled", "2025-11-27T09:00:00+00:00")
    ]


def test_an_unknown_event_type_goes_dead_for_a_person_to_look_at(
    salon: Salon, hooks: Any, django_capture_on_commit_callbacks: Any
) -> None:
    post(
        hooks["calcom"],
        signing.fixture("calcom/BOOKING_CREATED"),
        django_capture_on_commit_callbacks,
    )  # no staff has Cal.com user 4021
    with all_tenants("test"):
        event = WebhookEvent.objects.get(endpoint=hooks["calcom"])
    assert event.status == "dead"
    assert "no staff member or service" in event.last_error


# --- Stripe ---------------------------------------------------------------------------


def _stripe(
    name: str, appointment: Appointment, company_id: int | None = None, **changes: Any
) -> dict[str, Any]:
    payload = signing.fixture(f"stripe/{name}")
    payload["data"]["object"]["metadata"] = {
        "appointment_id": str(appointment.pk),
        "company_id": str(company_id or appointment.company_id),
    }
    payload["data"]["object"].update(changes)
    return payload


@pytest.fixture
def pending(salon: Salon) -> Appointment:
    with tenant_context(salon.company):
        return AppointmentFactory(status="pending", deposit_status="required")


def _deposit(appointment: Appointment) -> tuple[str, str, list[tuple[str, str]]]:
    with tenant_context(appointment.company_id):
        fresh = Appointment.objects.get(pk=appointment.pk)
        payments = list(
            Payment.objects.filter(appointment=fresh).values_list("payment_intent_id", "status")
        )
    return fresh.status, fresh.deposit_status, payments


def test_a_paid_deposit_confirms_the_appointment(
    pending: Appointment, hooks: Any, django_capture_on_commit_callbacks: Any
) -> None:
    post(
        hooks["stripe"],
        _stripe("payment_intent.succeeded", pending),
        django_capture_on_commit_callbacks,
    )
    assert _deposit(pending) == (
        AppointmentStatus.CONFIRMED,
        "paid",
        [("pi_3SWdemoAskPro0001", "succeeded")],
    )


def test_a_refund_before_the_payment_event_stays_refunded(
    pending: Appointment, hooks: Any, django_capture_on_commit_callbacks: Any
) -> None:
    post(hooks["stripe"], _stripe("charge.refunded", pending), django_capture_on_commit_callbacks)
    post(
        hooks["stripe"],
        _stripe("payment_intent.succeeded", pending),
        django_capture_on_commit_callbacks,
    )
    assert _deposit(pending)[1:] == ("refunded", [("pi_3SWdemoAskPro0001", "refunded")])


def test_a_failed_then_paid_deposit_ends_paid(
    pending: Appointment, hooks: Any, django_capture_on_commit_callbacks: Any
) -> None:
    post(
        hooks["stripe"],
        _stripe("payment_intent.payment_failed", pending),
        django_capture_on_commit_callbacks,
    )
    assert _deposit(pending)[1] == "failed"
    post(
        hooks["stripe"],
        _stripe("checkout.session.completed", pending),
        django_capture_on_commit_callbacks,
    )
    status, deposit, payments = _deposit(pending)
    assert (status, deposit) == ("confirmed", "paid")
    assert sorted(payments) == [
        ("pi_3SWdemoAskPro0001", "succeeded"),
        ("pi_3SWdemoAskPro0002", "failed"),
    ]
    with tenant_context(pending.company_id):
        assert Appointment.objects.get(pk=pending.pk).stripe_checkout_session_id.startswith("cs_")


def test_metadata_naming_another_company_is_ignored(
    world: World, pending: Appointment, hooks: Any, django_capture_on_commit_callbacks: Any
) -> None:
    post(
        hooks["stripe"],
        _stripe("payment_intent.succeeded", pending, company_id=world.b.pk),
        django_capture_on_commit_callbacks,
    )
    assert _deposit(pending) == ("pending", "required", [])
    with tenant_context(world.a):
        event = WebhookEvent.objects.get(endpoint=hooks["stripe"])
    assert event.status == "processed"


def test_the_same_payment_event_twice_has_one_effect(
    pending: Appointment, hooks: Any, django_capture_on_commit_callbacks: Any
) -> None:
    payload = _stripe("payment_intent.succeeded", pending)
    codes = [post(hooks["stripe"], payload, django_capture_on_commit_callbacks) for _ in range(3)]
    assert codes == [202, 200, 200]
    with tenant_context(pending.company_id):
        assert Appointment.objects.get(pk=pending.pk).history.filter(action="deposit").count() == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrency needs PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_identical_deliveries_store_one_event(world: World) -> None:
    from django.test import Client

    with tenant_context(world.a):
        WebhookEndpoint.objects.all().delete()
        endpoint = WebhookEndpointFactory(provider="stripe", secret="whsec_race")
    body = json.dumps(signing.fixture("stripe/payment_intent.succeeded")).encode()
    headers = signing.signed_headers("stripe", body, "whsec_race")
    barrier, codes, lock = threading.Barrier(50), [], threading.Lock()

    def deliver() -> None:
        try:
            barrier.wait()
            code = (
                Client()
                .post(endpoint.path, body, content_type="application/json", **headers)
                .status_code
            )
            with lock:
                codes.append(code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=deliver) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == [200] * 49 + [202]
    with all_tenants("test"):
        assert WebhookEvent.objects.filter(endpoint_id=endpoint.pk).count() == 1
