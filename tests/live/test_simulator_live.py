"""The simulator's webhooks reach AskPro as real signed HTTP: gunicorn, workers, handlers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection

from bookings.models import Appointment
from integrations import sdk
from integrations.breakers import reset_stores
from integrations.deadline import Deadline
from integrations.http import seam
from integrations.simulator import ProviderSimulator
from tenants.context import all_tenants, tenant_context
from tests.conftest import World
from tests.factories import AppointmentFactory, WebhookEndpointFactory
from tests.live.harness import LiveStack, wait_until
from tests.providers import checkout_params
from webhooks.models import Payment, WebhookEndpoint, WebhookEvent

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="live stack"),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def sim(settings: Any) -> Iterator[ProviderSimulator]:
    with ProviderSimulator() as simulator:
        settings.CALCOM_API_BASE = simulator.base("calcom") + "/v2"
        settings.STRIPE_API_BASE = simulator.base("stripe")
        reset_stores()
        yield simulator
    reset_stores()


def endpoint(world: World, provider: str, secret: str) -> WebhookEndpoint:
    with tenant_context(world.a):
        WebhookEndpoint.objects.filter(provider=provider).delete()
        return WebhookEndpointFactory(provider=provider, secret=secret)


def events(**filters: Any) -> list[WebhookEvent]:
    with all_tenants("test: watch the inbox"):
        return list(WebhookEvent.objects.filter(**filters))


def test_a_paid_checkout_session_confirms_the_appointment_through_our_webhook(
    world: World, live: LiveStack, sim: ProviderSimulator
) -> None:
    stripe_endpoint = endpoint(world, "stripe", "whsec_sim")
    with tenant_context(world.a):
        appointment = AppointmentFactory(status="pending", deposit_status="required")
    metadata = {"appointment_id": str(appointment.pk), "company_id": str(world.a.pk)}
    live.start_web()
    live.start_worker()
    sim.add_webhook_target("stripe", live.base_url + stripe_endpoint.path, "whsec_sim")

    client = sdk.stripe_client("sk_test_company_a")
    session = sdk.call(
        "stripe",
        "create_checkout",
        Deadline.after(10),
        lambda: client.v1.checkout.sessions.create(params=checkout_params(metadata)),
    )
    sim.pay_checkout_session(session.id)
    assert sim.wait_for_webhooks(20)
    assert sorted(d["status"] for d in sim.deliveries) == [202, 202]

    def processed() -> bool:
        found = events(endpoint_id=stripe_endpoint.pk)
        return len(found) == 2 and {e.status for e in found} == {"processed"}

    wait_until(processed, 60, "both Stripe events processed")
    assert {e.event_type for e in events(endpoint_id=stripe_endpoint.pk)} == {
        "checkout.session.completed",
        "payment_intent.succeeded",
    }
    with tenant_context(world.a):
        fresh = Appointment.objects.get(pk=appointment.pk)
        assert (fresh.status, fresh.deposit_status) == ("confirmed", "paid")
        assert Payment.objects.filter(appointment=appointment).count() == 1


def test_a_calcom_booking_made_through_the_simulator_fires_our_calcom_webhook(
    world: World, live: LiveStack, sim: ProviderSimulator
) -> None:
    calcom_endpoint = endpoint(world, "calcom", "cal-webhook-secret")
    live.start_web()
    headers = {"Authorization": "Bearer cal_live_company_a", "cal-api-version": "2024-08-13"}
    with sim.lock:
        sim.state["calcom"]["event_types"][1187] = {
            "id": 1187,
            "title": "Haarschnitt",
            "slug": "haarschnitt-30",
            "lengthInMinutes": 30,
        }
    base = sim.base("calcom") + "/v2"
    seam().request(
        "calcom",
        "register_webhook",
        "POST",
        base + "/webhooks",
        headers=headers,
        json={
            "subscriberUrl": live.base_url + calcom_endpoint.path,
            "triggers": ["BOOKING_CREATED", "BOOKING_CANCELLED"],
            "secret": "cal-webhook-secret",
            "active": True,
        },
        deadline=Deadline.after(5),
    )
    booking = (
        seam()
        .request(
            "calcom",
            "create_booking",
            "POST",
            base + "/bookings",
            headers=headers,
            json={
                "start": "2030-01-07T09:00:00Z",
                "eventTypeId": 1187,
                "attendee": {
                    "name": "Max Mustermann",
                    "email": "max@example.com",
                    "timeZone": "Europe/Berlin",
                    "phoneNumber": "+4915112345678",
                },
            },
            deadline=Deadline.after(5),
        )
        .json()["data"]
    )
    assert sim.wait_for_webhooks(20)
    assert [d["status"] for d in sim.deliveries] == [202]
    stored = events(endpoint_id=calcom_endpoint.pk)
    assert [(e.event_type, e.dedup_key) for e in stored] == [
        ("BOOKING_CREATED", f"BOOKING_CREATED:{booking['uid']}")
    ]
