"""The JSON control API under ``/_sim/``: faults, request log, state, webhooks, payments."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

from .common import PROVIDERS, ApiError, SimRequest, SimResponse

if TYPE_CHECKING:
    from .server import ProviderSimulator


def _error(status: int, message: str) -> SimResponse:
    return SimResponse(status, {"error": message})


def handle_control(sim: ProviderSimulator, req: SimRequest) -> SimResponse:
    """Route one ``/_sim/...`` request (``req.path`` is below ``/_sim``)."""
    path, method = req.path.rstrip("/") or "/", req.method
    if req.parse_error:
        return _error(400, f"invalid JSON body: {req.parse_error}")
    body = req.body if isinstance(req.body, dict) else {}
    if path == "/faults":
        if method == "GET":
            return SimResponse(200, {"faults": sim.faults()})
        if method == "DELETE":
            sim.clear_faults()
            return SimResponse(200, {"faults": {}})
    if match := re.fullmatch(r"/faults/(\w+)", path):
        provider = match.group(1)
        if provider not in PROVIDERS:
            return _error(404, f"unknown provider {provider!r}")
        if method == "PUT":
            try:
                sim.set_fault(provider, **body)
            except (TypeError, ValueError) as exc:
                return _error(400, str(exc))
            return SimResponse(200, {"faults": sim.faults()})
        if method == "DELETE":
            sim.clear_faults(provider)
            return SimResponse(200, {"faults": sim.faults()})
    if path == "/requests":
        if method == "GET":
            return SimResponse(200, {"requests": sim.requests(req.q("provider"))})
        if method == "DELETE":
            sim.clear_requests()
            return SimResponse(200, {"requests": []})
    if path == "/deliveries" and method == "GET":
        return SimResponse(200, {"deliveries": sim.deliveries})
    if path == "/reset" and method == "POST":
        sim.reset()
        return SimResponse(200, {"reset": True})
    if path == "/state" and method == "GET":
        with sim.lock:
            dump = json.loads(json.dumps(sim.state, default=str))
        return SimResponse(200, dump)
    if path == "/webhooks" and method == "POST":
        provider, url = body.get("provider"), body.get("url")
        if provider not in PROVIDERS or not isinstance(url, str) or not url:
            return _error(400, "provider (calcom|retell|stripe) and url are required")
        target = sim.add_webhook_target(provider, url, str(body.get("secret") or ""))
        return SimResponse(201, target)
    if (match := re.fullmatch(r"/stripe/checkout_sessions/([^/]+)/pay", path)) and method == "POST":
        try:
            return SimResponse(200, sim.pay_checkout_session(match.group(1)))
        except ApiError as exc:
            return _error(exc.status, exc.message)
    if path.startswith("/retell/calls") and method == "POST":
        return _call(sim, path, body)
    return _error(404, f"no control route {method} /_sim{req.path}")


def _call(sim: ProviderSimulator, path: str, body: dict[str, object]) -> SimResponse:
    """``POST /_sim/retell/calls`` {to_number, from_number}; ``…/<id>/functions/<name>``
    {args}; ``…/<id>/end`` {summary?, successful?}: play Retell's side of a call."""
    try:
        if path == "/retell/calls":
            return SimResponse(
                201, sim.calls.start(str(body.get("to_number")), str(body.get("from_number")))
            )
        if match := re.fullmatch(r"/retell/calls/([\w]+)/functions/(\w+)", path):
            args = body.get("args") if isinstance(body.get("args"), dict) else {}
            return SimResponse(200, sim.calls.function(match.group(1), match.group(2), args))  # type: ignore[arg-type]
        if match := re.fullmatch(r"/retell/calls/([\w]+)/end", path):
            summary = str(body.get("summary") or "")
            return SimResponse(
                200, sim.calls.end(match.group(1), summary, bool(body.get("successful", True)))
            )
    except ApiError as exc:
        return _error(exc.status, exc.message)
    return _error(404, f"no control route POST /_sim{path}")
