"""The simulator's Retell call player: signed inbound, call events and tool calls."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from integrations.simulator import ProviderSimulator
from webhooks.verifiers import verify_retell

KEY = "key_company_a"


class Hooks:
    """Answers like AskPro would and keeps what it was sent."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                hooks.received.append((self.path, dict(self.headers), body))
                answer: dict[str, Any] = {"status": "accepted"}
                if self.path.endswith("/inbound/"):
                    answer = {"call_inbound": {"dynamic_variables": {"customer_name": "Max"}}}
                elif "/functions/" in self.path:
                    answer = {"status": "ok", "spoken": "Hallo"}
                payload = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def hooks() -> Iterator[Hooks]:
    h = Hooks()
    yield h
    h.server.shutdown()


@pytest.fixture
def sim(hooks: Hooks) -> Iterator[ProviderSimulator]:
    with ProviderSimulator() as simulator:
        api = httpx.Client(
            base_url=simulator.base("retell"), headers={"Authorization": f"Bearer {KEY}"}
        )
        llm = api.post(
            "/create-retell-llm",
            json={
                "general_prompt": "x",
                "general_tools": [
                    {
                        "type": "custom",
                        "name": "check_availability",
                        "url": hooks.url + "/functions/check_availability/",
                    }
                ],
            },
        ).json()
        agent = api.post(
            "/create-agent",
            json={
                "response_engine": {"type": "retell-llm", "llm_id": llm["llm_id"]},
                "voice_id": "11labs-Adrian",
                "webhook_url": hooks.url + "/events/",
            },
        ).json()
        api.post(
            "/import-phone-number",
            json={
                "phone_number": "+493012345670",
                "termination_uri": "x.pstn.twilio.com",
                "inbound_agents": [{"agent_id": agent["agent_id"], "weight": 1}],
                "inbound_webhook_url": hooks.url + "/inbound/",
            },
        ).raise_for_status()
        yield simulator


def test_a_call_is_played_with_signed_requests(sim: ProviderSimulator, hooks: Hooks) -> None:
    control = httpx.Client(base_url=sim.url + "/_sim/retell/calls")
    started = control.post("", json={"to_number": "+493012345670", "from_number": "+49151"})
    assert started.status_code == 201
    call_id = started.json()["call_id"]
    assert [s["step"] for s in started.json()["steps"]] == ["inbound", "call_started"]
    tool = control.post(f"/{call_id}/functions/check_availability", json={"args": {"a": 1}})
    assert tool.json()["body"] == {"status": "ok", "spoken": "Hallo"}
    ended = control.post(f"/{call_id}/end", json={"summary": "booked"})
    assert [s["step"] for s in ended.json()["steps"]] == ["call_ended", "call_analyzed"]

    paths = [path for path, _, _ in hooks.received]
    assert paths == [
        "/inbound/",
        "/events/",
        "/functions/check_availability/",
        "/events/",
        "/events/",
    ]
    for _, headers, body in hooks.received:
        verify_retell(body, headers, KEY)  # raises if bad
    bodies = [json.loads(body) for _, _, body in hooks.received]
    assert bodies[1]["call"]["retell_llm_dynamic_variables"] == {"customer_name": "Max"}
    assert bodies[2]["name"] == "check_availability"
    assert bodies[2]["args"] == {"a": 1}
    assert bodies[2]["call"]["call_id"] == call_id
    assert bodies[4]["event"] == "call_analyzed"
    assert bodies[4]["call"]["call_analysis"]["call_summary"] == "booked"


def test_unknown_numbers_and_tools_are_control_errors(sim: ProviderSimulator) -> None:
    control = httpx.Client(base_url=sim.url + "/_sim/retell/calls")
    assert control.post("", json={"to_number": "+4900", "from_number": "+49"}).status_code == 404
    call_id = control.post("", json={"to_number": "+493012345670", "from_number": "+49151"}).json()[
        "call_id"
    ]
    assert control.post(f"/{call_id}/functions/nope", json={}).status_code == 404
