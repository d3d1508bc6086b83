"""Breaker state in Redis: one Lua script, so every transition is atomic across processes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import redis

from integrations.breakers.policy import BreakerPolicy
from integrations.breakers.store import Admission, Outcome, Recorded, Snapshot

_SCRIPT = (Path(__file__).parent / "breaker.lua").read_text()


def _keys(name: str) -> list[str]:
    # One hash tag: both keys land on the same slot of a Redis Cluster.
    return [f"askpro:breaker:{{{name}}}", f"askpro:breaker:{{{name}}}:probe"]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisBreakerStore:
    kind = "redis"

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._script = client.register_script(_SCRIPT)

    def _run(self, name: str, *args: str | int | float) -> list[Any]:
        return list(self._script(keys=_keys(name), args=list(args)))

    def acquire(self, name: str, token: str, policy: BreakerPolicy) -> Admission:
        decision, state, retry_at, came_from = self._run(name, "acquire", token, policy.lease_ms)
        return Admission(_text(decision), _text(state), int(retry_at), _text(came_from))  # type: ignore[arg-type]

    def record(self, name: str, outcome: Outcome, token: str, policy: BreakerPolicy) -> Recorded:
        state, came_from, calls, failures, slow = self._run(
            name,
            "record",
            outcome,
            token,
            policy.bucket_ms,
            policy.buckets,
            policy.min_calls,
            policy.failure_rate,
            policy.slow_rate,
            policy.open_ms,
            policy.half_open_successes,
        )
        return Recorded(_text(state), _text(came_from), int(calls), int(failures), int(slow))

    def force(self, name: str, mode: str) -> tuple[str, str]:
        state, before = self._run(name, "force", mode)
        return _text(state), _text(before)

    def snapshot(self, name: str, policy: BreakerPolicy) -> Snapshot:
        row = self._run(name, "status", policy.bucket_ms, policy.buckets)
        state, forced, open_until, changed_at, calls, failures, slow, probe_ttl, now = row
        return Snapshot(
            state=_text(state),
            forced=_text(forced),
            open_until_ms=int(open_until),
            changed_at_ms=int(changed_at),
            calls=int(calls),
            failures=int(failures),
            slow=int(slow),
            probe_in_flight=int(probe_ttl) > 0,
            now_ms=int(now),
        )
