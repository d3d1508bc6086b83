"""What Redis answers at the door, in one round trip: is a delivery over a rate limit,
and has it been seen before?

Rate limits are fixed windows per endpoint and per client IP (``WEBHOOK_THROTTLE``),
counted for signed deliveries only: a forged flood is refused at the signature and
can't use up the genuine provider's budget. The "seen" mark is a fast answer for
duplicates; the unique row stays the truth (webhooks.inbox). A cache that is down lets
deliveries through rather than refusing what the providers would retry anyway.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache

from askpro.caches import redis_script

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

# KEYS: the rate counters, then the seen mark. ARGV[1]: a new counter's lifetime (s).
# Returns each counter's count, then whether the mark exists.
_LUA = """
local replies = {}
for i = 1, #KEYS - 1 do
  redis.call('SET', KEYS[i], 0, 'EX', ARGV[1], 'NX')
  replies[i] = redis.call('INCR', KEYS[i])
end
replies[#KEYS] = redis.call('EXISTS', KEYS[#KEYS])
return replies
"""


@dataclass(frozen=True, slots=True)
class Verdict:
    wait: int | None  # seconds until the window ends, when over a limit
    seen: bool  # delivered before (per the fast mark)


def _rate() -> tuple[int, int]:
    count, period = settings.WEBHOOK_THROTTLE.split("/")
    return int(count), _PERIODS[period]


def check(identities: tuple[str, ...], seen_key: str) -> Verdict:
    """Count one delivery for each identity and look up ``seen_key``."""
    limit, period = _rate()
    now = time.time()
    window = int(now // period)
    keys = [f"webhook-rate:{identity}:{window}" for identity in identities]
    try:
        *counts, seen = _ask(keys, seen_key, period + 1)
    except Exception:  # cache down: fail open (the unique row still catches duplicates)
        return Verdict(wait=None, seen=False)
    over = any(isinstance(count, int) and count > limit for count in counts)
    return Verdict(wait=max(1, period - int(now) % period) if over else None, seen=bool(seen))


def _ask(keys: list[str], seen_key: str, lifetime: int) -> list[Any]:
    script = redis_script(_LUA)
    if script is not None:
        return list(script([*keys, seen_key], [lifetime]))
    counts: list[Any] = []  # the SQLite smoke run's local memory: the cache API, key by key
    for key in keys:
        cache.add(key, 0, timeout=lifetime)
        counts.append(cache.incr(key))
    return [*counts, cache.get(seen_key) is not None]
