"""Fixed-window rate limits for webhook deliveries, per endpoint and per client IP.

Counters live in the default cache (Redis in production); a cache that is down lets
deliveries through rather than refusing what the providers would retry anyway.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache

_PERIODS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
}


def _rate() -> tuple[int, int]:
    count, period = settings.WEBHOOK_THROTTLE.split("/")
    return int(count), _PERIODS[period]


def retry_after(*identities: str) -> int | None:
    """Count one delivery for each identity; seconds to wait if any is over the limit."""
    limit, period = _rate()
    window = int(time.time() // period)
    for identity in identities:
        key = f"webhook-rate:{identity}:{window}"
        try:
            cache.add(key, 0, timeout=period + 1)
            count = cache.incr(key)
        except Exception:  # noqa: S112 - cache down or key evicted: fail open
            continue
        if not isinstance(count, int):
            continue
        if count > limit:
            return max(1, period - int(time.time()) % period)
    return None
