"""Retell's inbound-call webhook: signed, fast, answered with the caller's context."""

from __future__ import annotations

import json
import time
from typing import Any
from unittest import mock

import pytest
from django.test import Client

from tenants.context import all_tenants, tenant_context
from tests import signing
from tests.conftest import World
from tests.test_voice_tools import AGENT_A, AGENT_B, KEY_A, KEY_B, Voice, setup_voice
from webhooks.models import WebhookEndpoint, WebhookEvent


@pytest.fixture
def voice(world: World) -> Voice:
    return setup_voice(world)


def inbound_body(**changes: Any) -> bytes:
    payload = signing.fixture("retell/call_inbound")
    payload["call_inbound"].update(changes)
    return json.dumps(payload).encode()


def post(endpoint: WebhookEndpoint, raw: bytes, headers: dict[str, str]) -> Any:
    return Client().post(
        f"/webhooks/retell/{endpoint.pk}/inbound/", raw, content_type="application/json", **headers
    )


def deliver(endpoint: WebhookEndpoint, key: str, **changes: Any) -> dict[str, Any]:
    raw = inbound_body(**changes)
    response = post(endpoint, raw, {"HTTP_X_RETELL_SIGNATURE": signing.retell_header(raw, key)})
    assert response.status_code == 200, response.content
    answer: dict[str, Any] = response.json()["call_inbound"]
    assert "override_agent_id" not in answer  # the number's own agent takes the call
    assert all(isinstance(v, str) for v in answer["dynamic_variables"].values())
    return answer


def test_a_known_caller_gets_name_branch_and_opening_hours(voice: Voice) -> None:
    answer = deliver(voice.endpoint, KEY_A)  # the fixture: agent AGENT_A, Erika's number
    variables = answer["dynamic_variables"]
    assert variables["customer_name"] == "Erika Muster"
    assert variables["customer_known"] == "true"
    assert variables["caller_withheld"] == "false"
    assert variables["branch_name"] == "Mitte"
    assert variables["company_name"] == "Alpha Salon"
    assert variables["opening_hours"] == "Monday to Sunday: 09:00-17:00"
    assert variables["language"] == "de-DE"
    assert variables["branch_timezone"] == "Europe/Berlin"
    assert answer["metadata"] == {
        "askpro_branch_id": str(voice.salon.branch.pk),
        "askpro_customer_id": str(voice.salon.customer.pk),
    }


def test_unknown_and_withheld_callers_get_empty_names(voice: Voice) -> None:
    new = deliver(voice.endpoint, KEY_A, from_number="+4917612345678")["dynamic_variables"]
    assert (new["customer_name"], new["customer_known"]) == ("", "false")
    withheld = deliver(voice.endpoint, KEY_A, from_number="anonymous")["dynamic_variables"]
    assert (withheld["customer_name"], withheld["caller_withheld"]) == ("", "true")
    assert withheld["branch_name"] == "Mitte"


def test_an_unknown_agent_still_answers_with_every_variable(voice: Voice) -> None:
    answer = deliver(voice.endpoint, KEY_A, agent_id="agent_nobody")
    variables = answer["dynamic_variables"]
    assert variables["branch_name"] == ""
    assert variables["customer_name"] == "Erika Muster"  # the company still knows the caller
    assert set(variables) >= {"customer_name", "branch_name", "opening_hours", "language"}


def test_each_company_sees_only_its_own_customer(voice: Voice) -> None:
    # Both companies have a customer with this number; each endpoint names its own.
    theirs = deliver(voice.other, KEY_B, agent_id=AGENT_B)["dynamic_variables"]
    assert theirs["customer_name"] == "Bert Beta"
    assert theirs["branch_name"] == "Beta Mitte"
    # Company a's agent id at company b's endpoint is no branch of b.
    crossed = deliver(voice.other, KEY_B, agent_id=AGENT_A)["dynamic_variables"]
    assert crossed["branch_name"] == ""
    assert crossed["customer_name"] == "Bert Beta"


def test_bad_or_stale_signatures_are_401_and_unknown_endpoints_404(voice: Voice) -> None:
    raw = inbound_body()
    now_ms = int(time.time() * 1000)
    for headers in (
        {},
        {"HTTP_X_RETELL_SIGNATURE": signing.retell_header(raw, KEY_B)},
        {"HTTP_X_RETELL_SIGNATURE": signing.retell_header(raw, KEY_A, now_ms - 600_000)},
    ):
        response = post(voice.endpoint, raw, headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "not_authenticated"
    response = Client().post(
        "/webhooks/retell/8c0e8f8e-9a55-4d8e-9d6c-2f6a7f1f0c11/inbound/",
        raw,
        content_type="application/json",
        HTTP_X_RETELL_SIGNATURE=signing.retell_header(raw, KEY_A),
    )
    assert response.status_code == 404


def test_inbound_calls_are_not_stored_in_the_inbox(voice: Voice) -> None:
    deliver(voice.endpoint, KEY_A)
    with all_tenants("test: count inbox rows"):
        assert not WebhookEvent.objects.filter(endpoint_id=voice.endpoint.pk).exists()


def test_a_failure_fails_open_with_empty_variables(voice: Voice) -> None:
    with mock.patch("webhooks.tools.inbound.opening_hours", side_effect=RuntimeError("boom")):
        answer = deliver(voice.endpoint, KEY_A)
    assert answer["dynamic_variables"]["customer_name"] == ""
    assert answer["dynamic_variables"]["branch_name"] == ""


def test_a_body_that_is_no_inbound_call_still_answers(voice: Voice) -> None:
    raw = b"[]"
    response = post(
        voice.endpoint, raw, {"HTTP_X_RETELL_SIGNATURE": signing.retell_header(raw, KEY_A)}
    )
    assert response.status_code == 200
    assert response.json()["call_inbound"]["dynamic_variables"]["customer_name"] == ""


def test_inbound_is_a_handful_of_queries_and_fast(
    voice: Voice, django_assert_max_num_queries: Any
) -> None:
    deliver(voice.endpoint, KEY_A)  # warm
    with django_assert_max_num_queries(5):
        deliver(voice.endpoint, KEY_A)
    timings = []
    for _ in range(20):
        started = time.perf_counter()
        deliver(voice.endpoint, KEY_A)
        timings.append(time.perf_counter() - started)
    assert sorted(timings)[len(timings) // 2] < 0.5  # Retell waits 10 s; we need milliseconds
    with tenant_context(voice.salon.company):
        assert voice.salon.branch.retell_agent_id == AGENT_A
