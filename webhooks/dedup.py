"""What makes two deliveries the same event, per provider (DESIGN.md)."""

from __future__ import annotations

import hashlib
from typing import Any


class NotAnEvent(ValueError):
    """The JSON object lacks what the provider always sends."""


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def event_identity(provider: str, payload: dict[str, Any], body: bytes) -> tuple[str, str]:
    """Return ``(event_type, dedup_key)`` for a verified payload."""
    if provider == "stripe":
        event_id, event_type = _text(payload.get("id")), _text(payload.get("type"))
        if not event_id.startswith("evt_") or not event_type:
            raise NotAnEvent("a Stripe event has an evt_ id and a type")
        return event_type, event_id
    if provider == "retell":
        call = _object(payload.get("call"))
        event_type, call_id = _text(payload.get("event")), _text(call.get("call_id"))
        if not event_type or not call_id:
            raise NotAnEvent("a Retell webhook has an event and call.call_id")
        return event_type, f"{event_type}:{call_id}"
    if provider == "calcom":
        trigger = _text(payload.get("triggerEvent"))
        inner = _object(payload.get("payload"))
        if not trigger:
            raise NotAnEvent("a Cal.com webhook has a triggerEvent")
        uid = _text(inner.get("uid"))
        # Cal.com sends no delivery id; without a booking uid the body itself is the key.
        key = f"{trigger}:{uid}" if uid else f"{trigger}:sha256:{hashlib.sha256(body).hexdigest()}"
        return trigger, key[:255]
    raise NotAnEvent(f"unknown provider {provider}")
