"""When a breaker opens, how long it stays open, and how it closes again."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from django.conf import settings

NAMES = ("calcom", "retell", "stripe")


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """Failure rate over a sliding window, resilience4j-style, shared through Redis.

    The window is `buckets` buckets of `bucket_seconds`. Once it holds `min_calls` calls,
    the breaker opens when failures reach `failure_rate` of them, or slow calls (slower
    than `slow_call_seconds`) reach `slow_rate`. Open, it rejects for `open_seconds`;
    then one probe at a time (a lease of `probe_lease_seconds`) until
    `half_open_successes` probes in a row succeed; a failed probe opens it again.
    """

    bucket_seconds: float = 5.0
    buckets: int = 12
    min_calls: int = 10
    failure_rate: float = 0.5
    slow_call_seconds: float = 5.0
    slow_rate: float = 0.8
    open_seconds: float = 30.0
    half_open_successes: int = 2
    probe_lease_seconds: float = 15.0

    @property
    def bucket_ms(self) -> int:
        return max(1, int(self.bucket_seconds * 1000))

    @property
    def open_ms(self) -> int:
        return max(1, int(self.open_seconds * 1000))

    @property
    def lease_ms(self) -> int:
        return max(1, int(self.probe_lease_seconds * 1000))

    @classmethod
    def for_breaker(cls, name: str) -> BreakerPolicy:
        """Defaults, then `BREAKERS["default"]`, then `BREAKERS[name]` from settings."""
        overrides: dict[str, dict[str, Any]] = getattr(settings, "BREAKERS", {})
        policy = replace(cls(), **overrides.get("default", {}))
        return replace(policy, **overrides.get(name, {}))
