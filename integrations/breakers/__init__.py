"""Circuit breakers, one per provider, whose state every process shares through Redis.

    permit = get_breaker("calcom").acquire("create_booking")  # or ProviderUnavailable
    ...call...
    permit.record("success" | "failure" | "slow")

See docs/decisions/0005-circuit-breakers.md for the model and the Redis-outage policy.
"""

from __future__ import annotations

from integrations.breakers.core import Breaker, Permit, get_breaker, reset_stores
from integrations.breakers.policy import NAMES, BreakerPolicy

__all__ = ["NAMES", "Breaker", "BreakerPolicy", "Permit", "get_breaker", "reset_stores"]
