"""The breaker callers use: admission, outcome recording, forcing, and the store fallback."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import redis
import structlog
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from integrations import metrics
from integrations.breakers.local_store import LocalBreakerStore
from integrations.breakers.policy import NAMES, BreakerPolicy
from integrations.breakers.redis_store import RedisBreakerStore
from integrations.breakers.store import BreakerStore, Outcome, Recorded, Snapshot
from integrations.errors import ProviderUnavailable

log = structlog.get_logger(__name__)
T = TypeVar("T")

# After Redis fails, breakers stay process-local this long before trying Redis again, so
# a dead Redis costs one failed connect per process per interval, not one per call.
REDIS_RETRY_SECONDS = 5.0


class _Stores:
    """Redis when configured and answering; otherwise this process's own state."""

    def __init__(self) -> None:
        self.local = LocalBreakerStore()
        self._lock = threading.Lock()
        self._redis: RedisBreakerStore | None = None
        self._url = ""
        self._down_until = 0.0
        self.last_error = ""

    def _redis_store(self) -> RedisBreakerStore | None:
        url = settings.REDIS_URL
        if not url or time.monotonic() < self._down_until:
            return None
        with self._lock:
            if self._redis is None or self._url != url:
                client = redis.Redis.from_url(
                    url, socket_connect_timeout=0.25, socket_timeout=0.5, health_check_interval=0
                )
                self._redis, self._url = RedisBreakerStore(client), url
            return self._redis

    def run(self, name: str, op: Callable[[BreakerStore], T]) -> T:
        store = self._redis_store()
        if store is not None:
            try:
                return op(store)
            except redis.RedisError as exc:
                self._down_until = time.monotonic() + REDIS_RETRY_SECONDS
                self.last_error = type(exc).__name__
                metrics.breaker_store_fallbacks.labels(name).inc()
                log.warning("breaker.redis_unreachable", breaker=name, error=self.last_error)
        return op(self.local)

    def kind(self) -> str:
        """`redis`, or `local` with the reason: what `/health` reports."""
        if not settings.REDIS_URL:
            return "local: REDIS_URL not set"
        if time.monotonic() < self._down_until:
            return f"local: Redis unreachable ({self.last_error})"
        return "redis"

    def reset(self) -> None:
        with self._lock:
            self.local = LocalBreakerStore()
            self._redis, self._url, self._down_until, self.last_error = None, "", 0.0, ""


_stores = _Stores()


def reset_stores() -> None:
    """Forget clients and local state (tests; a settings change)."""
    _stores.reset()


def store_kind() -> str:
    return _stores.kind()


@dataclass(frozen=True, slots=True)
class Breaker:
    name: str
    policy: BreakerPolicy

    def acquire(self, operation: str = "call") -> Permit:
        """Admit one call or raise `ProviderUnavailable` without sending anything."""
        token = secrets.token_hex(8)
        admission = _stores.run(self.name, lambda s: s.acquire(self.name, token, self.policy))
        self._observe(admission.state, admission.transitioned_from)
        if admission.decision == "reject":
            metrics.breaker_rejections.labels(self.name).inc()
            raise ProviderUnavailable.at_ms(self.name, operation, admission.retry_at_ms)
        probe = admission.decision == "probe"
        return Permit(self, token if probe else "", probe)

    def record(self, outcome: Outcome, token: str = "") -> Recorded:
        recorded = _stores.run(
            self.name, lambda s: s.record(self.name, outcome, token, self.policy)
        )
        self._observe(recorded.state, recorded.transitioned_from, recorded)
        return recorded

    def force(self, mode: str) -> str:
        """`open` / `closed` persist until `reset`, which returns to automatic."""
        if mode not in ("open", "closed", "reset"):
            raise ValueError(f"unknown breaker mode {mode!r}")
        state, before = _stores.run(self.name, lambda s: s.force(self.name, mode))
        self._observe(state, before if before != state else "", manual=True)
        return state

    def snapshot(self) -> Snapshot:
        return _stores.run(self.name, lambda s: s.snapshot(self.name, self.policy))

    def _observe(
        self,
        state: str,
        came_from: str,
        recorded: Recorded | None = None,
        *,
        manual: bool = False,
    ) -> None:
        if not came_from:
            return
        metrics.breaker_transitions.labels(self.name, came_from, state).inc()
        fields: dict[str, str | int] = {
            "breaker": self.name,
            "from_state": came_from,
            "to_state": state,
        }
        if recorded is not None and recorded.calls:
            fields |= {"calls": recorded.calls, "failures": recorded.failures}
            fields |= {"slow": recorded.slow}
        event = "breaker.forced" if manual else "breaker.transition"
        if state == "open":
            log.warning(event, **fields)
        else:
            log.info(event, **fields)


@dataclass(frozen=True, slots=True)
class Permit:
    """One admitted call; report its outcome exactly once."""

    breaker: Breaker
    token: str
    probe: bool

    def record(self, outcome: Outcome) -> Recorded:
        return self.breaker.record(outcome, self.token)

    def outcome_for(self, *, failed: bool, seconds: float) -> Outcome:
        if failed:
            return "failure"
        return "slow" if seconds >= self.breaker.policy.slow_call_seconds else "success"


_breakers: dict[str, Breaker] = {}


def get_breaker(name: str) -> Breaker:
    breaker = _breakers.get(name)
    if breaker is None:
        if name not in NAMES:
            raise ValueError(f"unknown breaker {name!r}; known: {', '.join(NAMES)}")
        breaker = _breakers[name] = Breaker(name, BreakerPolicy.for_breaker(name))
    return breaker


@receiver(setting_changed)
def _forget_policies(*, setting: str, **kwargs: Any) -> None:
    if setting in ("BREAKERS", "REDIS_URL"):
        _breakers.clear()
