"""Cal.com and Stripe clients against the simulator: the calls AskPro relies on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from integrations.clients.calcom import Attendee, CalcomClient
from integrations.clients.stripe import StripeClient
from integrations.credentials import Credentials
from integrations.deadline import Deadline
from integrations.simulator import ProviderSimulator
from tests.conftest import seed_event_type

START = (datetime.now(UTC) + timedelta(days=3)).replace(hour=9, minute=0, second=0, microsecond=0)
MAX = Attendee(name="Max Mustermann", time_zone="Europe/Berlin", phone="+4915112345678")


@pytest.fixture
def sim(providers: ProviderSimulator, settings: Any) -> ProviderSimulator:
    seed_event_type(providers, 1187, "Haarschnitt")
    return providers


def calcom() -> CalcomClient:
    return CalcomClient(Credentials("calcom", "cal_live_a"), Deadline.after(10))


def stripe() -> StripeClient:
    return StripeClient(Credentials("stripe", "sk_test_a"), Deadline.after(10))


def test_a_booking_is_created_with_our_metadata_and_versions(sim: ProviderSimulator) -> None:
    booking = calcom().create_booking(
        event_type_id=1187, start=START, attendee=MAX, metadata={"appointment_id": "5"}
    )
    assert booking["status"] == "accepted"
    assert booking["metadata"] == {"appointment_id": "5"}
    request = sim.requests("calcom")[-1]
    assert request["headers"]["cal-api-version"] == "2024-08-13"
    assert calcom().get_booking(booking["uid"])["uid"] == booking["uid"]


def test_a_retried_create_finds_the_booking_it_made(sim: ProviderSimulator) -> None:
    first = calcom().create_booking(
        event_type_id=1187, start=START, attendee=MAX, metadata={"appointment_id": "5"}
    )
    again = calcom().create_booking(
        event_type_id=1187, start=START, attendee=MAX, metadata={"appointment_id": "5"}
    )
    assert again["uid"] == first["uid"]
    assert len(sim.state["calcom"]["bookings"]) == 1


def test_a_conflict_with_someone_elses_booking_is_an_error(sim: ProviderSimulator) -> None:
    from integrations.errors import IntegrationError

    calcom().create_booking(
        event_type_id=1187, start=START, attendee=MAX, metadata={"appointment_id": "5"}
    )
    with pytest.raises(IntegrationError) as raised:
        calcom().create_booking(
            event_type_id=1187, start=START, attendee=MAX, metadata={"appointment_id": "6"}
        )
    assert (raised.value.status, raised.value.permanent) == (409, True)


def test_cancelling_twice_is_done_once(sim: ProviderSimulator) -> None:
    booking = calcom().create_booking(
        event_type_id=1187, start=START, attendee=MAX, metadata={"appointment_id": "5"}
    )
    calcom().cancel_booking(booking["uid"], "customer called")
    calcom().cancel_booking(booking["uid"], "customer called")
    assert calcom().get_booking(booking["uid"])["status"] == "cancelled"


def test_rescheduling_moves_to_a_new_uid(sim: ProviderSimulator) -> None:
    booking = calcom().create_booking(
        event_type_id=1187, start=START, attendee=MAX, metadata={"appointment_id": "5"}
    )
    moved = calcom().reschedule_booking(booking["uid"], START + timedelta(hours=2))
    assert moved["uid"] != booking["uid"]
    assert calcom().get_booking(booking["uid"])["status"] == "cancelled"


def test_busy_times_and_listing(sim: ProviderSimulator) -> None:
    calcom().create_booking(
        event_type_id=1187, start=START, attendee=MAX, metadata={"appointment_id": "5"}
    )
    busy = calcom().busy_times(START - timedelta(hours=1), START + timedelta(hours=1))
    assert (START, START + timedelta(minutes=30)) in busy
    listed = calcom().bookings(after=START - timedelta(days=1), before=None)
    assert [b["metadata"]["appointment_id"] for b in listed] == ["5"]


def test_the_webhook_subscription_is_created_once_and_then_updated(
    sim: ProviderSimulator,
) -> None:
    first = calcom().upsert_webhook(url="https://a.example/hook/", secret="s1", webhook_id=None)
    second = calcom().upsert_webhook(url="https://a.example/hook/", secret="s2", webhook_id=None)
    assert first["id"] == second["id"]
    assert len(calcom().webhooks()) == 1


def test_a_deposit_checkout_is_created_once_per_appointment(sim: ProviderSimulator) -> None:
    kwargs = {
        "company_id": 7,
        "appointment_id": 41,
        "amount_cents": 2000,
        "currency": "EUR",
        "description": "Deposit: Haarschnitt",
        "success_url": "https://a.example/ok",
        "cancel_url": "https://a.example/cancel",
    }
    first = stripe().create_deposit_checkout(**kwargs)
    again = stripe().create_deposit_checkout(**kwargs)
    assert again.id == first.id
    assert first.metadata.to_dict() == {"appointment_id": "41", "company_id": "7"}
    assert {r["idempotency_key"] for r in sim.requests("stripe")} == {
        "askpro-7-appointment-41-deposit"
    }
    sim.pay_checkout_session(first.id)
    paid = stripe().checkout(first.id)
    refund = stripe().refund(company_id=7, payment_intent=paid.payment_intent)
    again_refund = stripe().refund(company_id=7, payment_intent=paid.payment_intent)
    assert refund.id == again_refund.id
    assert refund.amount == 2000


def test_the_stripe_webhook_endpoint_is_created_once(sim: ProviderSimulator) -> None:
    endpoint_id, secret = stripe().upsert_webhook_endpoint(
        url="https://a.example/webhooks/stripe/x/", endpoint_id=None
    )
    assert secret is not None
    assert secret.startswith("whsec_")
    again, no_secret = stripe().upsert_webhook_endpoint(
        url="https://a.example/webhooks/stripe/x/", endpoint_id=endpoint_id
    )
    assert (again, no_secret) == (endpoint_id, None)
