"""Breaker state in this process only: the fallback when Redis is unset or unreachable.

The same state machine as `breaker.lua`, for one process. Shared state is lost while it is
in use — each process decides alone — which is the stated price of a Redis outage
(docs/decisions/0005-circuit-breakers.md); `/health` reports it as degraded.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from integrations.breakers.policy import BreakerPolicy
from integrations.breakers.store import Admission, Outcome, Recorded, Snapshot


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class _State:
    state: str = "closed"
    forced: str = ""
    open_until: int = 0
    changed_at: int = 0
    successes: int = 0
    probe_token: str = ""
    probe_expires: int = 0
    # bucket epoch -> [calls, failures, slow]
    window: dict[int, list[int]] = field(default_factory=dict)

    def probe_alive(self, now: int) -> bool:
        return bool(self.probe_token) and now < self.probe_expires

    def open(self, now: int, policy: BreakerPolicy) -> None:
        self.state, self.open_until, self.changed_at = "open", now + policy.open_ms, now
        self.successes, self.probe_token, self.window = 0, "", {}

    def totals(self, now: int, policy: BreakerPolicy) -> tuple[int, int, int]:
        epoch = now // policy.bucket_ms
        live = [v for e, v in self.window.items() if e > epoch - policy.buckets]
        return sum(v[0] for v in live), sum(v[1] for v in live), sum(v[2] for v in live)


class LocalBreakerStore:
    kind = "local"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, _State] = {}

    def _get(self, name: str) -> _State:
        return self._states.setdefault(name, _State())

    def acquire(self, name: str, token: str, policy: BreakerPolicy) -> Admission:
        now = _now_ms()
        with self._lock:
            s = self._get(name)
            if s.forced == "open":
                return Admission("reject", "forced_open")
            if s.forced == "closed" or s.state == "closed":
                return Admission("allow", "forced_closed" if s.forced else "closed")
            came_from = ""
            if s.state == "open":
                if now < s.open_until:
                    return Admission("reject", "open", s.open_until)
                s.state, s.successes, s.changed_at, came_from = "half_open", 0, now, "open"
            if not s.probe_alive(now):
                s.probe_token, s.probe_expires = token, now + policy.lease_ms
                return Admission("probe", "half_open", 0, came_from)
            return Admission("reject", "half_open", s.probe_expires, came_from)

    def record(self, name: str, outcome: Outcome, token: str, policy: BreakerPolicy) -> Recorded:
        now = _now_ms()
        with self._lock:
            s = self._get(name)
            if s.forced or s.state == "open":
                return Recorded(s.state)
            if s.state == "half_open":
                if not token or not s.probe_alive(now) or s.probe_token != token:
                    return Recorded("half_open")
                if outcome != "success":
                    s.open(now, policy)
                    return Recorded("open", "half_open")
                s.probe_token = ""
                s.successes += 1
                if s.successes >= policy.half_open_successes:
                    s.state, s.changed_at, s.successes, s.window = "closed", now, 0, {}
                    return Recorded("closed", "half_open")
                return Recorded("half_open")
            epoch = now // policy.bucket_ms
            for old in [e for e in s.window if e <= epoch - policy.buckets]:
                del s.window[old]
            bucket = s.window.setdefault(epoch, [0, 0, 0])
            bucket[0] += 1
            bucket[1] += outcome == "failure"
            bucket[2] += outcome == "slow"
            calls, failures, slow = s.totals(now, policy)
            if calls >= policy.min_calls and (
                failures >= policy.failure_rate * calls or slow >= policy.slow_rate * calls
            ):
                s.open(now, policy)
                return Recorded("open", "closed", calls, failures, slow)
            return Recorded("closed", "", calls, failures, slow)

    def force(self, name: str, mode: str) -> tuple[str, str]:
        with self._lock:
            s = self._get(name)
            before = f"forced_{s.forced}" if s.forced else s.state
            if mode == "reset":
                self._states[name] = _State()
                return "closed", before
            s.forced, s.changed_at, s.probe_token = mode, _now_ms(), ""
            return f"forced_{mode}", before

    def snapshot(self, name: str, policy: BreakerPolicy) -> Snapshot:
        now = _now_ms()
        with self._lock:
            s = self._get(name)
            calls, failures, slow = s.totals(now, policy)
            return Snapshot(
                state=s.state,
                forced=s.forced,
                open_until_ms=s.open_until,
                changed_at_ms=s.changed_at,
                calls=calls,
                failures=failures,
                slow=slow,
                probe_in_flight=s.probe_alive(now),
                now_ms=now,
            )
