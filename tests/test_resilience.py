"""Acceptance: the seam, retries, breakers and both SDKs against the provider simulator."""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest
from prometheus_client import REGISTRY

from integrations import sdk
from integrations.breakers import get_breaker
from integrations.deadline import Deadline
from integrations.errors import CredentialsRejected, IntegrationError, ProviderUnavailable
from integrations.http import seam
from integrations.simulator import ProviderSimulator
from tests.providers import checkout_params

SESSION = checkout_params({"appointment_id": "41", "company_id": "7"})
CAL_KEY = {"Authorization": "Bearer cal_live_company_a", "cal-api-version": "2024-06-14"}


@pytest.fixture
def sim(providers: ProviderSimulator, settings: Any) -> ProviderSimulator:
    settings.BREAKERS = {"default": {"min_calls": 6, "open_seconds": 0.5}}
    return providers


def event_types(sim: ProviderSimulator, *, deadline: float = 5.0, attempts: int = 3) -> Any:
    return seam().request(
        "calcom",
        "list_event_types",
        "GET",
        sim.base("calcom") + "/v2/event-types",
        headers=CAL_KEY,
        deadline=Deadline.after(deadline),
        attempts=attempts,
    )


def seam_requests(provider: str) -> float:
    total = 0.0
    for outcome in ("ok", "client_error", "server_error", "credentials", "connect", "timeout"):
        labels = {"provider": provider, "operation": "", "outcome": outcome}
        for operation in ("create_checkout", "get_checkout", "refund", "llm", "agent"):
            labels["operation"] = operation
            total += REGISTRY.get_sample_value("askpro_external_request_seconds_count", labels) or 0
    return total


# --- the official SDKs, through the seam ---------------------------------------------


def test_stripe_package_creates_and_retrieves_a_checkout_session_and_a_refund(
    sim: ProviderSimulator,
) -> None:
    client = sdk.stripe_client("sk_test_company_a")
    deadline = Deadline.after(10)
    before = seam_requests("stripe")
    session = sdk.call(
        "stripe",
        "create_checkout",
        deadline,
        lambda: client.v1.checkout.sessions.create(
            params=SESSION, options={"idempotency_key": "appointment-41-deposit"}
        ),
    )
    assert session.id.startswith("cs_test_")
    assert (session.amount_total, session.metadata["appointment_id"]) == (2000, "41")
    fetched = sdk.call(
        "stripe", "get_checkout", deadline, lambda: client.v1.checkout.sessions.retrieve(session.id)
    )
    assert fetched.id == session.id
    sim.pay_checkout_session(session.id)
    paid = sdk.call(
        "stripe", "get_checkout", deadline, lambda: client.v1.checkout.sessions.retrieve(session.id)
    )
    assert paid.payment_status == "paid"
    refund = sdk.call(
        "stripe",
        "refund",
        deadline,
        lambda: client.v1.refunds.create(params={"payment_intent": paid.payment_intent}),
    )
    assert (refund.status, refund.amount) == ("succeeded", 2000)
    # Every one of those went out through the seam, measured.
    assert seam_requests("stripe") == before + 4
    logged = sim.requests("stripe")
    assert [r["path"] for r in logged][:2] == [
        "/v1/checkout/sessions",
        f"/v1/checkout/sessions/{session.id}",
    ]
    assert logged[0]["idempotency_key"] == "appointment-41-deposit"


def test_a_stripe_call_retried_three_times_reaches_stripe_with_one_idempotency_key(
    sim: ProviderSimulator,
) -> None:
    sim.set_fault("stripe", error_rate=1.0, times=2)
    client = sdk.stripe_client("sk_test_company_a")
    session = sdk.call(
        "stripe",
        "create_checkout",
        Deadline.after(10),
        lambda: client.v1.checkout.sessions.create(
            params=SESSION, options={"idempotency_key": "appointment-42-deposit"}
        ),
    )
    logged = sim.requests("stripe")
    assert [r["status"] for r in logged] == [500, 500, 200]
    assert {r["idempotency_key"] for r in logged} == {"appointment-42-deposit"}
    assert len(sim.state["stripe"]["checkout_sessions"]) == 1
    assert session.id in sim.state["stripe"]["checkout_sessions"]


def test_stripe_errors_come_out_as_integration_errors(sim: ProviderSimulator) -> None:
    with pytest.raises(IntegrationError) as missing:
        sdk.call(
            "stripe",
            "get_checkout",
            Deadline.after(5),
            lambda: sdk.stripe_client("sk_test_a").v1.checkout.sessions.retrieve("cs_test_nope"),
        )
    assert (missing.value.kind, missing.value.status, missing.value.permanent) == (
        "rejected",
        404,
        True,
    )
    with pytest.raises(CredentialsRejected):
        sdk.call(
            "stripe",
            "get_checkout",
            Deadline.after(5),
            lambda: sdk.stripe_client("wrong").v1.checkout.sessions.retrieve("cs_test_nope"),
        )
    assert len(sim.requests("stripe")) == 2  # neither was retried


def test_retell_sdk_creates_lists_and_updates_llms_and_agents(sim: ProviderSimulator) -> None:
    client = sdk.retell_client("key_company_a")
    deadline = Deadline.after(10)
    llm = sdk.call(
        "retell",
        "llm",
        deadline,
        lambda: client.llm.create(general_prompt="You book appointments.", begin_message="Hi"),
    )
    updated = sdk.call(
        "retell",
        "llm",
        deadline,
        lambda: client.llm.update(llm.llm_id, general_prompt="You book haircuts."),
    )
    assert (updated.version, updated.general_prompt) == (1, "You book haircuts.")
    assert [x.llm_id for x in sdk.call("retell", "llm", deadline, client.llm.list).items] == [
        llm.llm_id
    ]
    agent = sdk.call(
        "retell",
        "agent",
        deadline,
        lambda: client.agent.create(
            response_engine={"type": "retell-llm", "llm_id": llm.llm_id},
            voice_id="11labs-Adrian",
            agent_name="Salon Mitte",
        ),
    )
    renamed = sdk.call(
        "retell", "agent", deadline, lambda: client.agent.update(agent.agent_id, agent_name="Mitte")
    )
    assert renamed.agent_name == "Mitte"
    agents = sdk.call("retell", "agent", deadline, client.agent.list).items
    assert [a.agent_id for a in agents] == [agent.agent_id]
    assert len(sim.requests("retell")) == 6


def test_retell_server_errors_are_retried_by_us_not_by_the_sdk(sim: ProviderSimulator) -> None:
    sim.set_fault("retell", error_rate=1.0, error_status=503, times=1)
    client = sdk.retell_client("key_company_a")
    llms = sdk.call("retell", "llm", Deadline.after(10), client.llm.list)
    assert llms.items == []
    assert [r["status"] for r in sim.requests("retell")] == [503, 200]


# --- retries, checked against the simulator's request log ----------------------------


def test_retries_back_off_and_stop_when_the_provider_recovers(sim: ProviderSimulator) -> None:
    sim.set_fault("calcom", error_rate=1.0, times=2)
    assert event_types(sim).status_code == 200
    logged = sim.requests("calcom")
    assert [r["status"] for r in logged] == [500, 500, 200]
    gaps = [b["at"] - a["at"] for a, b in itertools.pairwise(logged)]
    assert 0.2 <= gaps[0] < 0.4 + 0.2  # 0.2 s + jitter up to 0.2 s, + scheduling slack
    assert 0.4 <= gaps[1] < 0.6 + 0.2


def test_retries_are_bounded_by_attempts(sim: ProviderSimulator) -> None:
    sim.set_fault("calcom", error_rate=1.0)
    with pytest.raises(IntegrationError) as raised:
        event_types(sim, attempts=3)
    assert raised.value.status == 500
    assert len(sim.requests("calcom")) == 3


def test_a_400_is_never_retried(sim: ProviderSimulator) -> None:
    with pytest.raises(IntegrationError) as raised:
        seam().request(
            "calcom",
            "create_booking",
            "POST",
            sim.base("calcom") + "/v2/bookings",
            headers=CAL_KEY,
            json={"start": "not a date"},
            deadline=Deadline.after(5),
            attempts=5,
        )
    assert raised.value.permanent
    assert 400 <= (raised.value.status or 0) < 500
    assert len(sim.requests("calcom")) == 1


def test_retry_after_is_honoured_and_retries_stop_at_the_deadline(sim: ProviderSimulator) -> None:
    sim.set_fault("calcom", rate_limit={"retry_after": 1}, times=1)
    assert event_types(sim).status_code == 200
    first, second = sim.requests("calcom")
    assert second["at"] - first["at"] >= 1.0

    sim.clear_requests()
    sim.set_fault("calcom", rate_limit={"retry_after": 30})
    started = time.monotonic()
    with pytest.raises(IntegrationError) as raised:
        event_types(sim, deadline=3, attempts=5)
    assert (raised.value.kind, raised.value.retry_after) == ("rate_limited", 30)
    assert time.monotonic() - started < 1.0
    assert len(sim.requests("calcom")) == 1


def test_a_slow_provider_times_out_within_the_deadline(sim: ProviderSimulator) -> None:
    sim.set_fault("calcom", latency_ms=2000)
    started = time.monotonic()
    with pytest.raises(IntegrationError) as raised:
        event_types(sim, deadline=0.6, attempts=3)
    assert raised.value.kind == "timeout"
    assert time.monotonic() - started < 1.5


# --- the breaker against a failing provider ------------------------------------------


def test_server_errors_open_the_breaker_and_it_recovers_by_itself(sim: ProviderSimulator) -> None:
    sim.set_fault("calcom", error_rate=1.0)
    outcomes = []
    for _ in range(8):
        try:
            event_types(sim, attempts=1)
        except IntegrationError as exc:
            outcomes.append(type(exc).__name__)
    # Open after the policy's minimum call count, all failed.
    assert outcomes == ["IntegrationError"] * 6 + ["ProviderUnavailable"] * 2
    sent = len(sim.requests("calcom"))
    assert sent == 6

    # Open: callers fail fast and nothing reaches the provider.
    started = time.perf_counter()
    for _ in range(20):
        with pytest.raises(ProviderUnavailable) as raised:
            event_types(sim, attempts=3)
    assert (time.perf_counter() - started) / 20 < 0.01
    assert raised.value.retry_at is not None
    assert len(sim.requests("calcom")) == sent

    # The provider recovers; after the open period, probes close the breaker unaided.
    sim.clear_faults()
    time.sleep(0.55)
    assert event_types(sim, attempts=1).status_code == 200
    assert get_breaker("calcom").snapshot().state == "half_open"
    assert event_types(sim, attempts=1).status_code == 200
    assert get_breaker("calcom").snapshot().state == "closed"
    for _ in range(5):
        assert event_types(sim).status_code == 200


def test_a_provider_outage_is_a_retryable_breaker_failure(sim: ProviderSimulator) -> None:
    sim.set_fault("calcom", outage="reset")
    with pytest.raises(IntegrationError) as raised:
        event_types(sim, attempts=2)
    assert (raised.value.kind, raised.value.retryable) == ("connect", True)
    assert get_breaker("calcom").snapshot().failures == 2


def test_breakers_are_per_provider(sim: ProviderSimulator) -> None:
    get_breaker("calcom").force("open")
    with pytest.raises(ProviderUnavailable):
        event_types(sim)
    llms = sdk.call("retell", "llm", Deadline.after(5), sdk.retell_client("key_a").llm.list)
    assert llms.items == []
