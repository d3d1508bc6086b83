"""Drive a simulated call through a running simulator's control API (the outside world).

Used by ``manage.py simulate_call``: each step asks the simulator to play Retell's part
(signed webhooks and tool calls to AskPro's real endpoints) and returns what AskPro said.
"""

from __future__ import annotations

from typing import Any

import httpx


class CallDriver:
    def __init__(self, simulator_url: str, timeout: float = 30.0) -> None:
        self.base = simulator_url.rstrip("/") + "/_sim/retell/calls"
        self.client = httpx.Client(timeout=timeout, trust_env=False)

    def close(self) -> None:
        self.client.close()

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.client.post(self.base + path, json=body)
        answer: dict[str, Any] = response.json()
        if response.status_code >= 400:
            raise RuntimeError(f"simulator: {answer.get('error') or response.text}")
        return answer

    def start(self, to_number: str, from_number: str) -> dict[str, Any]:
        return self._post("", {"to_number": to_number, "from_number": from_number})

    def function(self, call_id: str, tool: str, **args: Any) -> dict[str, Any]:
        return self._post(f"/{call_id}/functions/{tool}", {"args": args})

    def end(self, call_id: str, summary: str) -> dict[str, Any]:
        return self._post(f"/{call_id}/end", {"summary": summary, "successful": True})
