"""Cache configuration shared by the settings and the tests that break Redis."""

from __future__ import annotations

from typing import Any


def redis_cache(url: str) -> dict[str, Any]:
    """A django-redis cache that degrades instead of failing when Redis is unreachable."""
    return {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": url,
        "KEY_PREFIX": "askpro",
        "OPTIONS": {
            "SOCKET_CONNECT_TIMEOUT": 0.5,
            "SOCKET_TIMEOUT": 0.5,
            # A Redis outage degrades caching; it must not log staff out or fail requests.
            "IGNORE_EXCEPTIONS": True,
        },
    }
