"""Retell's side of a phone call, played against AskPro's real endpoints.

A call starts at a phone number the simulator knows (imported through its Retell API):
the inbound webhook goes to the number's ``inbound_webhook_url``, then ``call_started`` to
the agent's ``webhook_url``. Tool calls go to the URL of the custom tool of that name in
the agent's LLM, as ``{name, call, args}``. Ending sends ``call_ended`` and
``call_analyzed``. Everything is signed ``x-retell-signature`` with the API key that owns
the agent, exactly as Retell signs, and sent synchronously so the driver sees answers.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx

from .common import ApiError, Context, clone, now_ms, rand_hex
from .signing import sign_retell

TIMEOUT_S = 15.0


class RetellCalls:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._calls: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    @property
    def s(self) -> dict[str, Any]:
        retell: dict[str, Any] = self.ctx.state["retell"]
        return retell

    def _post(self, url: str, payload: dict[str, Any], key: str) -> dict[str, Any]:
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "X-Retell-Signature": sign_retell(body, key)}
        with httpx.Client(timeout=TIMEOUT_S, trust_env=False) as client:
            response = client.post(url, content=body, headers=headers)
        try:
            answer: Any = response.json()
        except ValueError:
            answer = response.text[:500]
        return {"url": url, "status": response.status_code, "body": answer}

    def start(self, to_number: str, from_number: str) -> dict[str, Any]:
        with self.ctx.lock:
            phone = clone(self.s["phone_numbers"].get(to_number))
            if phone is None:
                raise ApiError(404, f"no phone number {to_number} at the simulator")
            key = self.s["owners"].get(to_number, "")
            bindings = phone.get("inbound_agents") or []
            agent_id = str(bindings[0]["agent_id"]) if bindings else ""
            agent = clone(self.s["agents"].get(agent_id))
        if agent is None:
            raise ApiError(409, f"phone number {to_number} has no inbound agent")
        steps = []
        dynamic: dict[str, Any] = {}
        if phone.get("inbound_webhook_url"):
            inbound = self._post(
                phone["inbound_webhook_url"],
                {
                    "event": "call_inbound",
                    "call_inbound": {
                        "agent_id": agent_id,
                        "from_number": from_number,
                        "to_number": to_number,
                    },
                },
                key,
            )
            steps.append({"step": "inbound", **inbound})
            if isinstance(inbound["body"], dict):
                answer = inbound["body"].get("call_inbound") or {}
                dynamic = dict(answer.get("dynamic_variables") or {})
        call = {
            "call_id": f"call_{rand_hex(24)}",
            "agent_id": agent_id,
            "agent_version": agent.get("version", 0),
            "agent_name": agent.get("agent_name"),
            "call_type": "phone_call",
            "direction": "inbound",
            "from_number": from_number,
            "to_number": to_number,
            "call_status": "ongoing",
            "start_timestamp": now_ms(),
            "retell_llm_dynamic_variables": dynamic,
            "metadata": {},
            "data_storage_setting": "everything",
            "transcript": "",
        }
        with self._lock:
            self._calls[call["call_id"]] = {"call": call, "key": key, "agent": agent, "lines": []}
        if agent.get("webhook_url"):
            started = self._post(agent["webhook_url"], {"event": "call_started", "call": call}, key)
            steps.append({"step": "call_started", **started})
        return {"call_id": call["call_id"], "agent_id": agent_id, "steps": steps}

    def _tool_url(self, agent: dict[str, Any], name: str) -> str:
        llm_id = (agent.get("response_engine") or {}).get("llm_id")
        with self.ctx.lock:
            llm = self.s["llms"].get(llm_id) or {}
            for tool in llm.get("general_tools") or []:
                if tool.get("type") == "custom" and tool.get("name") == name:
                    return str(tool["url"])
        raise ApiError(404, f"the agent's LLM has no custom tool {name!r}")

    def _ongoing(self, call_id: str) -> dict[str, Any]:
        with self._lock:
            found = self._calls.get(call_id)
        if found is None:
            raise ApiError(404, f"no call {call_id}")
        return found

    def function(self, call_id: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
        ongoing = self._ongoing(call_id)
        url = self._tool_url(ongoing["agent"], name)
        ongoing["lines"].append(f"Agent: ({name} {json.dumps(args, ensure_ascii=False)})")
        call = {**ongoing["call"], "transcript": "\n".join(ongoing["lines"])}
        return self._post(url, {"name": name, "call": call, "args": args}, ongoing["key"])

    def say(self, call_id: str, role: str, text: str) -> None:
        """Add a line to the transcript (`User` or `Agent`)."""
        self._ongoing(call_id)["lines"].append(f"{role}: {text}")

    def end(self, call_id: str, summary: str = "", successful: bool = True) -> dict[str, Any]:
        ongoing = self._ongoing(call_id)
        url = ongoing["agent"].get("webhook_url")
        end = now_ms()
        call = {
            **ongoing["call"],
            "call_status": "ended",
            "end_timestamp": end,
            "duration_ms": end - ongoing["call"]["start_timestamp"],
            "disconnection_reason": "user_hangup",
            "transcript": "\n".join(ongoing["lines"]),
        }
        steps = []
        if url:
            steps.append(
                {
                    "step": "call_ended",
                    **self._post(url, {"event": "call_ended", "call": call}, ongoing["key"]),
                }
            )
            analyzed = {
                **call,
                "call_analysis": {
                    "call_summary": summary or "The caller talked to the agent.",
                    "call_successful": successful,
                    "user_sentiment": "Positive" if successful else "Neutral",
                    "in_voicemail": False,
                    "custom_analysis_data": {},
                },
            }
            steps.append(
                {
                    "step": "call_analyzed",
                    **self._post(url, {"event": "call_analyzed", "call": analyzed}, ongoing["key"]),
                }
            )
        with self._lock:
            self._calls.pop(call_id, None)
        return {"call_id": call_id, "steps": steps}
