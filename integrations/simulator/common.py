"""Shared plumbing of the simulator: request/response values, ids, clocks, the context."""

from __future__ import annotations

import copy
import secrets
import string
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

PROVIDERS = ("calcom", "retell", "stripe")

JSON = Any
Emit = Callable[[str, str, dict[str, Any], list["Target"]], None]

_ALNUM = string.ascii_letters + string.digits


@dataclass
class SimRequest:
    """One request as a provider handler sees it (path is below the provider prefix)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    raw_body: bytes
    body: JSON = None
    query_pairs: list[tuple[str, str]] = field(default_factory=list)
    parse_error: str | None = None

    def q(self, name: str, default: str | None = None) -> str | None:
        """First value of a query parameter."""
        values = self.query.get(name)
        return values[0] if values else default

    def bearer(self) -> str | None:
        """The token of an ``Authorization: Bearer <token>`` header, if any."""
        value = self.headers.get("authorization", "")
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return token.strip()


@dataclass
class SimResponse:
    """A JSON (or raw) answer."""

    status: int
    body: JSON = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    content_type: str = "application/json"


class ApiError(Exception):
    """Raised by handlers; the provider module renders it in its own error shape."""

    def __init__(self, status: int, message: str, code: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.extra = extra


@dataclass(frozen=True)
class Target:
    """Where one provider's signed webhooks are delivered."""

    provider: str
    url: str
    secret: str


@dataclass
class Context:
    """What provider handlers share: state under one lock, the public URL, webhook emission."""

    state: dict[str, Any]
    lock: threading.RLock
    emit: Emit
    url: str = ""

    def targets(self, provider: str) -> list[Target]:
        """Targets added with ``add_webhook_target`` (they receive every event)."""
        return [
            Target(t["provider"], t["url"], t["secret"])
            for t in self.state["targets"]
            if t["provider"] == provider
        ]


def fresh_state() -> dict[str, Any]:
    """The empty world."""
    return {
        "targets": [],
        "stripe": {
            "checkout_sessions": {},
            "payment_intents": {},
            "charges": {},
            "refunds": {},
            "webhook_endpoints": {},
            "events": {},
            "idempotency": {},
            "owners": {},
            "session_pi_data": {},
        },
        "calcom": {
            "event_types": {},
            "bookings": {},
            "webhooks": {},
            "busy": [],
            "owners": {},
            "next_id": 1000,
            "organizer": {
                "id": 4021,
                "name": "Simulated Organizer",
                "email": "organizer@example.com",
                "username": "organizer",
                "timeZone": "UTC",
            },
        },
        "retell": {"llms": {}, "agents": {}, "phone_numbers": {}, "owners": {}},
    }


def rand_alnum(n: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(n))


def rand_hex(n: int) -> str:
    return secrets.token_hex((n + 1) // 2)[:n]


def now_s() -> int:
    return int(time.time())


def now_ms() -> int:
    return int(time.time() * 1000)


def iso_z(dt: datetime) -> str:
    """``2025-11-27T09:00:00.000Z`` (Cal.com's format)."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_dt(value: Any, name: str) -> datetime:
    """An ISO 8601 datetime (or date) as an aware UTC datetime; naive means UTC."""
    if not isinstance(value, str) or not value:
        raise ApiError(400, f"{name} must be an ISO 8601 datetime", "BAD_REQUEST")
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise ApiError(400, f"{name} is not a valid ISO 8601 datetime", "BAD_REQUEST") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def visible(owners: dict[Any, str], obj_id: Any, key: str) -> bool:
    """Objects belong to the API key that created them; seeded ones (no owner) to everybody."""
    owner = owners.get(obj_id)
    return owner is None or owner == key


def clone(obj: Any) -> Any:
    return copy.deepcopy(obj)
