"""Logs with context and redaction, error ids, slow queries, and the /metrics endpoint.

Log assertions read the real pipeline: the ``structlog`` formatter of our LOGGING
config, rendering JSON, attached to the root logger for the test.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import pytest
import structlog
from django.db import connection
from django.test import Client, override_settings
from prometheus_client import REGISTRY

from monitoring.logging import build_logging_config
from tenants.context import all_tenants, tenant_context
from tests import signing
from tests.conftest import World, token_client
from tests.factories import WebhookEndpointFactory
from webhooks import processing
from webhooks.models import WebhookEndpoint, WebhookEvent

Lines = Callable[[], list[dict[str, Any]]]
STRIPE_SECRET = "whsec_observability_test"


@pytest.fixture
def json_logs() -> Iterator[Lines]:
    """Capture every log line at INFO and above as the JSON objects production writes."""
    formatter_config = dict(build_logging_config("INFO", "json")["formatters"]["structlog"])
    formatter = formatter_config.pop("()")(**formatter_config)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines() if line]
    root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture
def stripe_endpoint(world: World) -> WebhookEndpoint:
    with tenant_context(world.a):
        WebhookEndpoint.objects.filter(provider="stripe").delete()
        return WebhookEndpointFactory(provider="stripe", secret=STRIPE_SECRET)


def deliver(endpoint: WebhookEndpoint, event_id: str, **headers: str) -> Any:
    payload = signing.fixture("stripe/payment_intent.succeeded")
    payload["id"] = event_id
    body = json.dumps(payload).encode()
    signed = signing.signed_headers("stripe", body, STRIPE_SECRET)
    return Client().post(endpoint.path, body, content_type="application/json", **signed, **headers)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- request context ------------------------------------------------------------------


def test_the_request_id_is_taken_echoed_and_on_every_line_with_the_company(
    stripe_endpoint: WebhookEndpoint, json_logs: Lines, world: World
) -> None:
    response = deliver(stripe_endpoint, "evt_ctx_1", HTTP_X_REQUEST_ID="support-case-42")
    assert response.status_code == 202
    assert response["X-Request-ID"] == "support-case-42"
    finished = [line for line in json_logs() if line["event"] == "request_finished"]
    assert len(finished) == 1
    line = finished[0]
    assert line["request_id"] == "support-case-42"
    assert line["company_id"] == world.a.pk
    assert line["view"] == "webhook"
    assert line["code"] == 202
    assert line["duration_ms"] >= 0
    assert line["level"] == "info"
    # The work the request did in its tenant carries both too (the eager task included).
    inner = [e for e in json_logs() if e["event"] != "request_finished"]
    assert all(e.get("request_id") == "support-case-42" for e in inner)


def test_a_request_without_a_usable_id_gets_a_fresh_one(json_logs: Lines) -> None:
    plain = Client().get("/health/live")
    crafted = Client().get("/health/live", HTTP_X_REQUEST_ID='bad id\n{"admin":true}')
    assert re.fullmatch(r"[0-9a-f]{32}", plain["X-Request-ID"])
    assert re.fullmatch(r"[0-9a-f]{32}", crafted["X-Request-ID"])
    assert plain["X-Request-ID"] != crafted["X-Request-ID"]
    logged = {line["request_id"] for line in json_logs() if line["event"] == "request_finished"}
    assert logged == {plain["X-Request-ID"], crafted["X-Request-ID"]}


def test_a_tenant_binding_names_the_company_on_lines_inside_it_only(
    world: World, json_logs: Lines
) -> None:
    log = structlog.get_logger("askpro.test")
    with tenant_context(world.a):
        log.warning("inside")
        with all_tenants("test: the bypass names no company"):
            log.warning("bypass")
        log.warning("back inside")
    log.warning("outside")
    by_event = {line["event"]: line.get("company_id") for line in json_logs()}
    assert by_event["inside"] == world.a.pk
    assert by_event["bypass"] is None
    assert by_event["back inside"] == world.a.pk
    assert by_event["outside"] is None


# --- redaction ------------------------------------------------------------------------


SECRET_VALUES = {
    "stripe key": "sk_live_51HxAbCdEfGhIjKlMnOp",
    "webhook secret": "whsec_9f8e7d6c5b4a39281706",
    "retell key": "key_3c0ffee1d2e3f4a5b6c7",
    "bearer": "Bearer eyJhbGciOiJIUzI1NiJ9.payload.signature",
}


def test_secrets_are_masked_in_messages_fields_and_exceptions(json_logs: Lines) -> None:
    std = logging.getLogger("askpro.test")
    std.warning(
        "calling with %s and %s",
        SECRET_VALUES["stripe key"],
        SECRET_VALUES["bearer"],
        extra={"headers": {"Authorization": "Token 0123456789abcdef", "Accept": "json"}},
    )
    structlog.get_logger("askpro.test").warning(
        "configured",
        api_key="anything at all",
        password="hunter2hunter2",
        note=f"secret is {SECRET_VALUES['webhook secret']} and {SECRET_VALUES['retell key']}",
        cookie="sessionid=abc123def456",
    )
    try:
        raise ValueError(f"rejected key {SECRET_VALUES['stripe key']}")
    except ValueError:
        std.exception("provider said no")
    text = json.dumps(json_logs())
    for name, value in SECRET_VALUES.items():
        assert value not in text, name
    for leaked in ("0123456789abcdef", "hunter2", "anything at all", "abc123def456"):
        assert leaked not in text
    lines = json_logs()
    assert lines[0]["headers"] == {"Authorization": "[redacted]", "Accept": "json"}
    assert lines[1]["api_key"] == "[redacted]"
    assert "[redacted]" in lines[2]["exception"]
    assert "ValueError" in lines[2]["exception"]  # the traceback itself stays useful


def test_phone_numbers_and_emails_are_shortened_not_dropped(json_logs: Lines) -> None:
    structlog.get_logger("askpro.test").warning(
        "caller +49301234567 wrote from anna.schmidt@example.com",
        path="/api/v1/customers/?phone=%2B4915112345678",
        numbers=["+4915112345678"],
    )
    line = json_logs()[0]
    assert line["event"] == "caller +49301****67 wrote from a***@example.com"
    assert line["path"] == "/api/v1/customers/?phone=%2B49151****78"
    assert line["numbers"] == ["+49151****78"]
    text = json.dumps(line)
    for leaked in ("4915112345678", "49301234567", "anna.schmidt"):
        assert leaked not in text


# --- errors ---------------------------------------------------------------------------


def test_a_forced_api_error_answers_its_id_and_logs_it_with_the_traceback(
    world: World, json_logs: Lines
) -> None:
    client = token_client(world.owner_a)
    with mock.patch(
        "tenants.api.MeView.get", side_effect=RuntimeError("kaboom sk_live_x1y2z3w4v5")
    ):
        response = client.get("/api/v1/me/")
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "internal"
    assert re.fullmatch(r"[0-9a-f]{32}", error["id"])
    body = response.content.decode()
    for leaked in ("Traceback", "kaboom", "RuntimeError"):
        assert leaked not in body
    logged = [line for line in json_logs() if line.get("error_id") == error["id"]]
    assert len(logged) == 1
    assert "RuntimeError: kaboom" in logged[0]["exception"]
    assert "sk_live_x1y2z3w4v5" not in logged[0]["exception"]
    assert logged[0]["request_id"] == response["X-Request-ID"]
    assert logged[0]["company_id"] == world.a.pk


def test_a_crash_outside_the_api_answers_the_same_shape(
    stripe_endpoint: WebhookEndpoint, json_logs: Lines
) -> None:
    with mock.patch("webhooks.views._receive", side_effect=RuntimeError("view bug")):
        response = Client(raise_request_exception=False).post(
            stripe_endpoint.path, b"{}", content_type="application/json"
        )
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "internal"
    assert "view bug" not in response.content.decode()
    assert any(line.get("error_id") == error["id"] for line in json_logs())


# --- slow queries ---------------------------------------------------------------------


@pytest.mark.django_db
@override_settings(SLOW_QUERY_MS=30)
def test_slow_queries_are_logged_with_their_context_and_without_parameters(
    json_logs: Lines,
) -> None:
    context = structlog.contextvars.bound_contextvars(view="appointment-list", request_id="r-1")
    with context, connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(0.05), %s::text", ["+4915112345678"])
        cursor.execute("SELECT 1")
    slow = [line for line in json_logs() if line["event"] == "slow_query"]
    assert len(slow) == 1
    assert (slow[0]["view"], slow[0]["request_id"]) == ("appointment-list", "r-1")
    assert slow[0]["duration_ms"] >= 30
    assert "pg_sleep" in slow[0]["sql"]
    assert "4915112345678" not in json.dumps(slow[0])


# --- metrics --------------------------------------------------------------------------


def scrape(client: Client | None = None, **extra: Any) -> str:
    response = (client or Client()).get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


def gauge(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    pattern = re.escape(f"{name}{{{wanted}}}" if labels else name) + r" (\S+)"
    found = re.search(rf"^{pattern}$", text, re.M)
    assert found, f"{name} {labels} not in the scrape"
    return float(found.group(1))


@pytest.mark.django_db
def test_metrics_answer_loopback_and_refuse_other_networks() -> None:
    assert "askpro_breaker_state" in scrape()
    outside = Client(REMOTE_ADDR="203.0.113.9").get("/metrics")
    assert outside.status_code == 403
    assert outside.json()["error"]["code"] == "permission_denied"
    with override_settings(METRICS_TOKEN="scrape-token-1"):
        assert Client().get("/metrics").status_code == 403
        wrong = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer nope")
        assert wrong.status_code == 403
        assert "askpro_" in scrape(HTTP_AUTHORIZATION="Bearer scrape-token-1")


def test_webhook_outcomes_at_the_door_and_in_the_worker_are_counted(
    stripe_endpoint: WebhookEndpoint, world: World
) -> None:
    def outcome(name: str) -> float:
        return sample("askpro_webhook_events_total", provider="stripe", outcome=name)

    before = {name: outcome(name) for name in ("accepted", "duplicate", "rejected", "processed")}
    lag_before = sample("askpro_webhook_lag_seconds_count", provider="stripe")
    assert deliver(stripe_endpoint, "evt_count_1").status_code == 202
    assert deliver(stripe_endpoint, "evt_count_1").status_code == 200
    bad = Client().post(stripe_endpoint.path, b"{}", content_type="application/json")
    assert bad.status_code == 401
    with tenant_context(world.a):
        event = WebhookEvent.objects.get(dedup_key="evt_count_1")
        assert processing.process(event.pk) == "processed"
    after = {name: outcome(name) for name in before}
    assert {name: after[name] - before[name] for name in before} == {
        "accepted": 1,
        "duplicate": 1,
        "rejected": 1,
        "processed": 1,
    }
    assert sample("askpro_webhook_lag_seconds_count", provider="stripe") == lag_before + 1


def test_the_scrape_reads_backlog_and_breakers_from_shared_state(
    stripe_endpoint: WebhookEndpoint, world: World
) -> None:
    from integrations.breakers import get_breaker, reset_stores

    before = scrape()
    with tenant_context(world.a):
        for n in range(3):
            WebhookEvent.objects.create(
                endpoint_id=stripe_endpoint.pk,
                provider="stripe",
                event_type="payment_intent.succeeded",
                dedup_key=f"evt_backlog_{n}",
                status="failed" if n == 0 else "received",
            )
    reset_stores()
    get_breaker("stripe").force("open")
    try:
        text = scrape()
    finally:
        get_breaker("stripe").force("reset")
    for status, added in (("received", 2), ("failed", 1), ("dead", 0)):
        then = gauge(before, "askpro_webhook_backlog", status=status)
        assert gauge(text, "askpro_webhook_backlog", status=status) == then + added
    assert gauge(text, "askpro_webhook_oldest_unprocessed_seconds") >= 0
    assert gauge(text, "askpro_breaker_state", breaker="stripe") == 2
    assert gauge(text, "askpro_breaker_state", breaker="calcom") == 0
    assert gauge(text, "askpro_scrape_source_up", source="inbox") == 1


def test_an_unreadable_source_is_reported_not_a_failed_scrape(db: Any) -> None:
    with mock.patch.dict(
        "monitoring.scrape.SOURCES", {"inbox": mock.Mock(side_effect=RuntimeError("x"))}
    ):
        text = scrape()
    assert gauge(text, "askpro_scrape_source_up", source="inbox") == 0
    assert "askpro_webhook_backlog" not in text
    assert gauge(text, "askpro_scrape_source_up", source="breakers") == 1


# --- domain counters ------------------------------------------------------------------


def test_api_bookings_are_counted_by_source_and_outcome(world: World, salon: Any) -> None:
    from tests.test_booking_api import URL, payload

    def count(outcome: str) -> float:
        return sample("askpro_bookings_total", source="api", outcome=outcome)

    booked, taken = count("booked"), count("slot_taken")
    client = token_client(world.owner_a)
    assert client.post(URL, payload(salon, 11), format="json").status_code == 201
    assert client.post(URL, payload(salon, 11), format="json").status_code == 409
    assert (count("booked") - booked, count("slot_taken") - taken) == (1, 1)


def test_voice_tool_calls_are_timed_and_counted_with_a_closed_set_of_labels(
    world: World,
) -> None:
    from tests.test_voice_tools import KEY_A, body, post, setup_voice

    voice = setup_voice(world)
    seconds = sample("askpro_tool_call_seconds_count", tool="find_customer")
    ok = sample("askpro_tool_calls_total", tool="find_customer", outcome="ok")
    other = sample("askpro_tool_calls_total", tool="other", outcome="refused")
    unsigned = sample("askpro_tool_calls_total", tool="find_customer", outcome="unauthorized")

    assert post(voice.endpoint, "find_customer", body("find_customer", {}), KEY_A).json()
    post(voice.endpoint, "find_customer", body("find_customer", {}), "key_wrong_0000000000")
    made_up = post(voice.endpoint, "drop_tables", body("drop_tables", {}), KEY_A).json()
    assert made_up["code"] == "unknown_tool"

    assert sample("askpro_tool_call_seconds_count", tool="find_customer") == seconds + 1
    assert sample("askpro_tool_calls_total", tool="find_customer", outcome="ok") == ok + 1
    assert sample("askpro_tool_calls_total", tool="other", outcome="refused") == other + 1
    after = sample("askpro_tool_calls_total", tool="find_customer", outcome="unauthorized")
    assert after == unsigned + 1
    assert (
        REGISTRY.get_sample_value(
            "askpro_tool_calls_total", {"tool": "drop_tables", "outcome": "refused"}
        )
        is None
    )


# --- error reporting ------------------------------------------------------------------


def test_sentry_is_set_up_without_personal_data_and_scrubs_events() -> None:
    from monitoring import sentry

    with mock.patch("sentry_sdk.init") as init:
        sentry.configure("https://public@sentry.invalid/1", environment="test")
    options = init.call_args.kwargs
    assert options["send_default_pii"] is False
    assert options["include_local_variables"] is False
    assert options["before_send"] is sentry.scrub

    event = {
        "exception": {"values": [{"value": "key sk_live_abcdef123456 for +4915112345678"}]},
        "request": {
            "headers": {"Authorization": "Bearer abcdefgh12345678", "Accept": "json"},
            "cookies": "sessionid=s3cr3tsession",
        },
        "extra": {"customer": "anna.schmidt@example.com"},
    }
    text = json.dumps(sentry.scrub(event, {}))
    for leaked in ("sk_live_abcdef123456", "4915112345678", "abcdefgh12345678", "s3cr3t", "anna."):
        assert leaked not in text
    assert '"Accept": "json"' in text
