"""The provider simulator speaks well enough for the official SDKs, signs its webhooks the
way the providers do, and injects the faults it promises. No database needed."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import retell
import stripe
from retell.lib.webhook_auth import symmetric as retell_signing

from integrations.simulator import ProviderSimulator, sign_retell
from integrations.simulator.forms import FormError, parse_form
from tests.providers import checkout_params

STRIPE_SECRET = "whsec_test_simulator"
CAL_SECRET = "cal-webhook-secret"
CAL = {"Authorization": "Bearer cal_test_a", "cal-api-version": "2024-08-13"}


# -- fixtures --------------------------------------------------------------------------
class Receiver:
    """A tiny HTTP server that keeps what it is sent."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._cond:
                    receiver.received.append(
                        {"path": self.path, "headers": dict(self.headers), "body": body}
                    )
                    receiver._cond.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        with self._cond:
            self._cond.wait_for(lambda: len(self.received) >= count, timeout)
            return list(self.received)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sim() -> Iterator[ProviderSimulator]:
    with ProviderSimulator() as simulator:
        yield simulator


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5, trust_env=False) as client:
        yield client


def stripe_client(sim: ProviderSimulator, key: str = "sk_test_a") -> stripe.StripeClient:
    return stripe.StripeClient(
        key, base_addresses={"api": sim.base("stripe")}, max_network_retries=0
    )


def retell_client(sim: ProviderSimulator, key: str) -> retell.Retell:
    return retell.Retell(api_key=key, base_url=sim.base("retell"), max_retries=0)


SESSION_PARAMS = checkout_params({"appointment_id": "5", "company_id": "1"}, quantity=2)


def next_weekday_10utc() -> datetime:
    day = datetime.now(UTC).date() + timedelta(days=2)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return datetime(day.year, day.month, day.day, 10, tzinfo=UTC)


def seed_event_type(sim: ProviderSimulator, ident: int = 1187) -> None:
    with sim.lock:
        sim.state["calcom"]["event_types"][ident] = {
            "id": ident,
            "title": "Haarschnitt",
            "slug": "haarschnitt-30",
            "lengthInMinutes": 30,
        }


# -- form parsing ------------------------------------------------------------------------
def test_bracket_notation_builds_nested_dicts_and_lists() -> None:
    body = (
        "mode=payment&metadata[appointment_id]=5&metadata[7]=x"
        "&line_items[0][price_data][currency]=eur&line_items[0][price_data][unit_amount]=2000"
        "&line_items[0][quantity]=1&line_items[1][quantity]=3"
        "&payment_intent_data[metadata][x]=y&expand[]=payment_intent&expand[]=line_items"
    )
    assert parse_form(body) == {
        "mode": "payment",
        "metadata": {"appointment_id": "5", "7": "x"},
        "line_items": [
            {"price_data": {"currency": "eur", "unit_amount": "2000"}, "quantity": "1"},
            {"quantity": "3"},
        ],
        "payment_intent_data": {"metadata": {"x": "y"}},
        "expand": ["payment_intent", "line_items"],
    }
    with pytest.raises(FormError):
        parse_form("a=1&a[b]=2")


# -- Stripe ------------------------------------------------------------------------------
def test_stripe_checkout_session_and_refund_with_official_package(sim: ProviderSimulator) -> None:
    client = stripe_client(sim)
    session = client.v1.checkout.sessions.create(params=SESSION_PARAMS)
    assert session.id.startswith("cs_test_")
    assert session.object == "checkout.session"
    assert (session.status, session.payment_status) == ("open", "unpaid")
    assert session.amount_total == 4000
    assert session.currency == "eur"
    assert session.metadata.to_dict() == {"appointment_id": "5", "company_id": "1"}
    assert session.url == f"{sim.url}/stripe/pay/{session.id}"
    assert session.payment_intent is None  # created when paid
    assert client.v1.checkout.sessions.retrieve(session.id).id == session.id

    sim.pay_checkout_session(session.id)
    paid = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["payment_intent"]})
    assert (paid.status, paid.payment_status) == ("complete", "paid")
    intent = paid.payment_intent
    assert intent.status == "succeeded"
    assert intent.id.startswith("pi_")
    assert intent.latest_charge.startswith("ch_")
    assert intent.metadata.to_dict() == {"appointment_id": "5", "company_id": "1"}

    refund = client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 1500})
    assert refund.id.startswith("re_")
    assert (refund.status, refund.amount, refund.payment_intent) == ("succeeded", 1500, intent.id)
    assert client.v1.refunds.retrieve(refund.id).amount == 1500
    rest = client.v1.refunds.create(params={"payment_intent": intent.id})
    assert rest.amount == 2500
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        client.v1.refunds.create(params={"payment_intent": intent.id})
    assert excinfo.value.code == "charge_already_refunded"

    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        client.v1.checkout.sessions.retrieve("cs_test_missing")
    assert excinfo.value.http_status == 404
    with pytest.raises(stripe.InvalidRequestError):  # another account
        stripe_client(sim, "sk_test_other").v1.checkout.sessions.retrieve(session.id)


def test_stripe_requires_an_api_key(sim: ProviderSimulator, http: httpx.Client) -> None:
    response = http.post(f"{sim.base('stripe')}/v1/payment_intents", data={"amount": "1"})
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_stripe_idempotency_replays_and_refuses_other_params(sim: ProviderSimulator) -> None:
    client = stripe_client(sim)
    opts = {"idempotency_key": "book-42"}
    first = client.v1.payment_intents.create(
        params={"amount": 500, "currency": "eur", "metadata": {"a": "1"}}, options=opts
    )
    again = client.v1.payment_intents.create(
        params={"amount": 500, "currency": "eur", "metadata": {"a": "1"}}, options=opts
    )
    assert again.id == first.id
    assert first.status == "requires_payment_method"
    assert len(sim.state["stripe"]["payment_intents"]) == 1
    with pytest.raises(stripe.IdempotencyError):
        client.v1.payment_intents.create(params={"amount": 999, "currency": "eur"}, options=opts)


def test_stripe_idempotent_replay_header(sim: ProviderSimulator, http: httpx.Client) -> None:
    url = f"{sim.base('stripe')}/v1/payment_intents"
    headers = {"Authorization": "Bearer sk_test_a", "Idempotency-Key": "k1"}
    one = http.post(url, data={"amount": "100", "currency": "eur"}, headers=headers)
    two = http.post(url, data={"amount": "100", "currency": "eur"}, headers=headers)
    assert one.json() == two.json()
    assert "Idempotent-Replayed" not in one.headers
    assert two.headers["Idempotent-Replayed"] == "true"


def test_paying_sends_two_signed_events(
    sim: ProviderSimulator, receiver: Receiver, http: httpx.Client
) -> None:
    sim.add_webhook_target("stripe", receiver.url, STRIPE_SECRET)
    session = stripe_client(sim).v1.checkout.sessions.create(params=SESSION_PARAMS)
    assert http.get(session.url).status_code == 200  # the hosted page pays

    got = receiver.wait(2)
    events = [
        stripe.Webhook.construct_event(
            d["body"].decode(), d["headers"]["Stripe-Signature"], STRIPE_SECRET
        )
        for d in got
    ]
    assert [e.type for e in events] == ["checkout.session.completed", "payment_intent.succeeded"]
    completed, succeeded = (e.data.object for e in events)
    assert events[0].id.startswith("evt_")
    assert completed.id == session.id
    assert completed.payment_status == "paid"
    assert completed.metadata["appointment_id"] == "5"
    assert succeeded.id == completed.payment_intent
    assert sim.wait_for_webhooks()
    assert [d["status"] for d in sim.deliveries] == [200, 200]


def test_registered_endpoint_gets_refund_event(sim: ProviderSimulator, receiver: Receiver) -> None:
    client = stripe_client(sim)
    endpoint = client.v1.webhook_endpoints.create(
        params={"url": receiver.url, "enabled_events": ["charge.refunded"]}
    )
    assert endpoint.secret.startswith("whsec_")
    assert [e.id for e in client.v1.webhook_endpoints.list().data] == [endpoint.id]
    session = client.v1.checkout.sessions.create(params=SESSION_PARAMS)
    paid = sim.pay_checkout_session(session.id)
    client.v1.refunds.create(params={"payment_intent": paid["payment_intent"]})
    (delivery,) = receiver.wait(1)
    event = stripe.Webhook.construct_event(
        delivery["body"].decode(), delivery["headers"]["Stripe-Signature"], endpoint.secret
    )
    assert event.type == "charge.refunded"
    assert event.data.object.refunded is True
    assert client.v1.webhook_endpoints.delete(endpoint.id).deleted is True


# -- Retell ------------------------------------------------------------------------------
def test_retell_llm_agent_and_phone_number_with_official_sdk(sim: ProviderSimulator) -> None:
    a, b = retell_client(sim, "key_company_a"), retell_client(sim, "key_company_b")
    llm = a.llm.create(general_prompt="You book appointments.", begin_message="Hello")
    assert llm.llm_id.startswith("llm_")
    assert llm.version == 0
    updated = a.llm.update(llm.llm_id, general_prompt="New prompt")
    assert updated.general_prompt == "New prompt"
    assert updated.version == 1
    assert updated.last_modification_timestamp >= llm.last_modification_timestamp
    assert a.llm.retrieve(llm.llm_id).general_prompt == "New prompt"
    b.llm.create(general_prompt="other company")
    assert [x.llm_id for x in a.llm.list().items] == [llm.llm_id]

    agent = a.agent.create(
        response_engine={"type": "retell-llm", "llm_id": llm.llm_id},
        voice_id="11labs-Adrian",
        agent_name="Salon Mitte",
        webhook_url="https://askpro.example/webhooks/retell/x/",
    )
    assert agent.agent_id.startswith("agent_")
    assert agent.response_engine.llm_id == llm.llm_id
    renamed = a.agent.update(agent.agent_id, agent_name="Salon Mitte 2")
    assert (renamed.agent_name, renamed.version) == ("Salon Mitte 2", 1)
    assert [x.agent_name for x in a.agent.list().items] == ["Salon Mitte 2"]
    assert b.agent.list().items == []
    with pytest.raises(retell.NotFoundError):
        b.agent.retrieve(agent.agent_id)

    number = a.phone_number.import_(
        phone_number="+493012345678",
        termination_uri="askpro.pstn.twilio.com",
        inbound_agents=[{"agent_id": agent.agent_id, "weight": 1}],
        nickname="Mitte",
    )
    assert number.phone_number_type == "custom"
    assert number.inbound_agents[0].agent_id == agent.agent_id
    a.phone_number.update("+493012345678", nickname="Mitte main")
    assert a.phone_number.retrieve("+493012345678").nickname == "Mitte main"
    assert [p.phone_number for p in a.phone_number.list().items] == ["+493012345678"]
    assert b.phone_number.list().items == []


def test_retell_requires_an_api_key(sim: ProviderSimulator, http: httpx.Client) -> None:
    assert http.get(f"{sim.base('retell')}/v2/list-retell-llms").status_code == 401


def test_sign_retell_matches_the_sdk() -> None:
    body = b'{"event":"call_started"}'
    header = sign_retell(body, "key_x", timestamp_ms=1_700_000_000_000)
    assert header == retell_signing["sign"](body.decode(), "key_x", 1_700_000_000_000)
    assert retell_signing["verify"](body.decode(), "key_x", sign_retell(body, "key_x"))


# -- Cal.com -----------------------------------------------------------------------------
def test_calcom_booking_sends_signed_webhook(
    sim: ProviderSimulator, receiver: Receiver, http: httpx.Client
) -> None:
    seed_event_type(sim)
    api = sim.base("calcom")
    hook = http.post(
        f"{api}/v2/webhooks",
        json={
            "subscriberUrl": receiver.url,
            "triggers": ["BOOKING_CREATED"],
            "secret": CAL_SECRET,
            "active": True,
        },
        headers=CAL,
    )
    assert hook.status_code == 201
    start = next_weekday_10utc()
    booking = {
        "start": start.isoformat().replace("+00:00", "Z"),
        "eventTypeId": 1187,
        "attendee": {
            "name": "Max",
            "email": "max@example.com",
            "timeZone": "Europe/Berlin",
            "phoneNumber": "+4915112345678",
        },
        "metadata": {"appointment_id": "7"},
    }
    response = http.post(f"{api}/bookings", json=booking, headers=CAL)
    assert response.status_code == 201, response.text
    data = response.json()["data"]
    assert response.json()["status"] == "success"
    assert (data["status"], data["eventTypeId"], len(data["uid"])) == ("accepted", 1187, 22)
    assert data["end"] == (start + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%S.000Z")

    (delivery,) = receiver.wait(1)
    expected = hmac.new(CAL_SECRET.encode(), delivery["body"], hashlib.sha256).hexdigest()
    assert delivery["headers"]["X-Cal-Signature-256"] == expected
    payload = json.loads(delivery["body"])
    assert payload["triggerEvent"] == "BOOKING_CREATED"
    assert payload["payload"]["uid"] == data["uid"]
    assert payload["payload"]["bookingId"] == data["id"]
    assert payload["payload"]["status"] == "ACCEPTED"
    assert payload["payload"]["metadata"] == {"appointment_id": "7"}
    assert payload["payload"]["attendees"][0]["phoneNumber"] == "+4915112345678"

    clash = http.post(f"{api}/bookings", json=booking, headers=CAL)
    assert clash.status_code == 409
    assert clash.json()["status"] == "error"
    day = start.date().isoformat()
    slots = http.get(
        f"{api}/slots", params={"eventTypeId": 1187, "start": day, "end": day}, headers=CAL
    ).json()["data"][day]
    starts = [s["start"] for s in slots]
    assert data["start"] not in starts
    assert len(starts) == 15  # 09:00-16:30 minus the booked 10:00
    assert http.get(f"{api}/bookings/{data['uid']}", headers=CAL).json()["data"]["id"] == data["id"]


def test_calcom_cancel_reschedule_busy_and_drift(
    sim: ProviderSimulator, receiver: Receiver, http: httpx.Client
) -> None:
    seed_event_type(sim)
    sim.add_webhook_target("calcom", receiver.url, CAL_SECRET)
    api = sim.base("calcom")  # without /v2 this time
    start = next_weekday_10utc()
    body = {
        "start": start.isoformat(),
        "eventTypeId": 1187,
        "attendee": {"name": "Max", "email": "m@example.com", "timeZone": "UTC"},
    }
    uid = http.post(f"{api}/bookings", json=body, headers=CAL).json()["data"]["uid"]
    moved = http.post(
        f"{api}/bookings/{uid}/reschedule",
        json={"start": (start + timedelta(hours=2)).isoformat(), "reschedulingReason": "late"},
        headers=CAL,
    ).json()["data"]
    assert moved["rescheduledFromUid"] == uid
    assert http.get(f"{api}/bookings/{uid}", headers=CAL).json()["data"]["status"] == "cancelled"
    busy = http.get(f"{api}/calendars/busy-times", headers=CAL).json()["data"]
    assert busy == [{"start": moved["start"], "end": moved["end"]}]
    cancelled = http.post(
        f"{api}/bookings/{moved['uid']}/cancel", json={"cancellationReason": "ill"}, headers=CAL
    ).json()["data"]
    assert cancelled["status"] == "cancelled"
    triggers = [json.loads(d["body"])["triggerEvent"] for d in receiver.wait(3)]
    assert triggers == ["BOOKING_CREATED", "BOOKING_RESCHEDULED", "BOOKING_CANCELLED"]
    rescheduled = json.loads(receiver.received[1]["body"])["payload"]
    assert (rescheduled["uid"], rescheduled["rescheduleUid"]) == (moved["uid"], uid)

    third = http.post(f"{api}/bookings", json=body, headers=CAL).json()["data"]["uid"]
    receiver.wait(4)
    sim.calcom_cancel_silently(third)
    assert sim.wait_for_webhooks()
    assert len(receiver.received) == 4  # no webhook for the drift
    listed = http.get(f"{api}/bookings", params={"status": "cancelled"}, headers=CAL).json()
    assert {b["uid"] for b in listed["data"]} == {uid, moved["uid"], third}
    assert http.get(f"{api}/bookings", headers={"cal-api-version": "x"}).status_code == 401


# -- faults ------------------------------------------------------------------------------
def test_latency_fault(sim: ProviderSimulator) -> None:
    sim.set_fault("stripe", latency_ms=300)
    started = time.monotonic()
    stripe_client(sim).v1.payment_intents.create(params={"amount": 100, "currency": "eur"})
    assert time.monotonic() - started >= 0.3


def test_error_rate_with_times_fails_twice_then_succeeds(sim: ProviderSimulator) -> None:
    sim.set_fault("stripe", error_rate=1.0, error_status=502, times=2)
    client = stripe_client(sim)
    for _ in range(2):
        with pytest.raises(stripe.APIError):
            client.v1.payment_intents.create(params={"amount": 100, "currency": "eur"})
    client.v1.payment_intents.create(params={"amount": 100, "currency": "eur"})
    log = sim.requests("stripe")
    assert [(e["status"], e["fault"]) for e in log] == [
        (502, "error_rate"),
        (502, "error_rate"),
        (200, None),
    ]
    assert sim.faults() == {}


def test_rate_limit_and_503_outage(sim: ProviderSimulator, http: httpx.Client) -> None:
    sim.set_fault("calcom", rate_limit={"retry_after": 2})
    response = http.get(f"{sim.base('calcom')}/v2/event-types", headers=CAL)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "2"
    assert response.json()["status"] == "error"
    sim.set_fault("calcom", outage="503", rate_limit={"retry_after": 2})  # outage wins
    assert http.get(f"{sim.base('calcom')}/event-types", headers=CAL).status_code == 503
    sim.clear_faults()
    assert http.get(f"{sim.base('calcom')}/event-types", headers=CAL).status_code == 200


def test_outage_drops_the_connection(sim: ProviderSimulator, http: httpx.Client) -> None:
    sim.set_fault("retell", outage=True, times=1)
    with pytest.raises(httpx.RemoteProtocolError):
        http.get(f"{sim.base('retell')}/v2/list-retell-llms", headers={"Authorization": "Bearer k"})
    ok = http.get(
        f"{sim.base('retell')}/v2/list-retell-llms", headers={"Authorization": "Bearer k"}
    )
    assert ok.status_code == 200
    assert [(e["status"], e["fault"]) for e in sim.requests("retell")] == [
        (None, "outage:reset"),
        (200, None),
    ]


def test_timeout_outage_holds_the_request(sim: ProviderSimulator) -> None:
    sim.set_fault("stripe", outage="timeout")
    with (
        httpx.Client(timeout=0.3, trust_env=False) as client,
        pytest.raises(httpx.ReadTimeout),
    ):
        client.get(f"{sim.base('stripe')}/v1/refunds/re_x")


def test_request_log_keeps_useful_headers_but_never_authorization(
    sim: ProviderSimulator, http: httpx.Client
) -> None:
    seed_event_type(sim)
    http.get(
        f"{sim.base('calcom')}/v2/slots?eventTypeId=1187&start=2030-01-07&end=2030-01-07",
        headers=CAL,
    )
    stripe_client(sim).v1.checkout.sessions.create(params=SESSION_PARAMS)
    calcom, stripe_entry = sim.requests()
    assert calcom["provider"] == "calcom"
    assert calcom["path"] == "/v2/slots"
    assert calcom["query"] == {"eventTypeId": "1187", "start": "2030-01-07", "end": "2030-01-07"}
    assert calcom["headers"]["cal-api-version"] == "2024-08-13"
    assert stripe_entry["path"] == "/v1/checkout/sessions"
    assert stripe_entry["idempotency_key"]
    assert stripe_entry["body"]["line_items"][0]["price_data"]["unit_amount"] == "2000"
    assert stripe_entry["body"]["metadata"] == {"appointment_id": "5", "company_id": "1"}
    for entry in (calcom, stripe_entry):
        assert entry["seq"]
        assert entry["at"]
        assert entry["status"] == 200
        assert "authorization" not in {h.lower() for h in entry["headers"]}
        assert "Bearer" not in json.dumps(entry)
    assert [e["provider"] for e in sim.requests("stripe")] == ["stripe"]


def test_control_api_over_http(
    sim: ProviderSimulator, receiver: Receiver, http: httpx.Client
) -> None:
    control = f"{sim.url}/_sim"
    put = http.put(f"{control}/faults/stripe", json={"error_rate": 1.0, "times": 1})
    assert put.status_code == 200
    assert http.get(f"{control}/faults").json()["faults"]["stripe"]["error_rate"] == 1.0
    assert http.put(f"{control}/faults/stripe", json={"bogus": 1}).status_code == 400
    assert http.put(f"{control}/faults/nope", json={}).status_code == 404
    assert http.delete(f"{control}/faults").json() == {"faults": {}}

    target = {"provider": "stripe", "url": receiver.url, "secret": STRIPE_SECRET}
    assert http.post(f"{control}/webhooks", json=target).status_code == 201
    session = stripe_client(sim).v1.checkout.sessions.create(params=SESSION_PARAMS)
    paid = http.post(f"{control}/stripe/checkout_sessions/{session.id}/pay")
    assert paid.json()["payment_status"] == "paid"
    assert http.post(f"{control}/stripe/checkout_sessions/{session.id}/pay").status_code == 400
    assert len(receiver.wait(2)) == 2

    log = http.get(f"{control}/requests", params={"provider": "stripe"}).json()["requests"]
    assert [e["path"] for e in log] == ["/v1/checkout/sessions"]
    state = http.get(f"{control}/state").json()
    assert session.id in state["stripe"]["checkout_sessions"]
    assert http.delete(f"{control}/requests").json() == {"requests": []}
    assert http.post(f"{control}/reset").status_code == 200
    assert http.get(f"{control}/state").json()["stripe"]["checkout_sessions"] == {}
    assert sim.requests() == []


def test_many_concurrent_clients(sim: ProviderSimulator) -> None:
    url = f"{sim.base('retell')}/v2/list-retell-llms"
    sim.set_fault("retell", latency_ms=100)

    def call(client: httpx.Client) -> int:
        return client.get(url, headers={"Authorization": "Bearer k"}).status_code

    limits = httpx.Limits(max_connections=60)
    with httpx.Client(timeout=10, trust_env=False, limits=limits) as client:
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=60) as pool:
            statuses = list(pool.map(lambda _: call(client), range(120)))
        elapsed = time.monotonic() - started
    assert statuses == [200] * 120
    assert elapsed < 3  # concurrent, not 12 s of serialized latency


# -- management command ------------------------------------------------------------------
def test_simulate_providers_command_serves_until_sigterm() -> None:
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "askpro.settings_test"}
    process = subprocess.Popen(
        [sys.executable, "manage.py", "simulate_providers", "--port", "0"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline().strip() for _ in range(4)]
        assert [line.split("=")[0] for line in lines[:3]] == [
            "CALCOM_API_BASE",
            "RETELL_API_BASE",
            "STRIPE_API_BASE",
        ]
        control = lines[3].split()[-1]
        assert control.endswith("/_sim/")
        assert lines[2].split("=")[1] == control.replace("/_sim/", "/stripe")
        with httpx.Client(timeout=5, trust_env=False) as client:
            assert client.get(f"{control}faults").json() == {"faults": {}}
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
