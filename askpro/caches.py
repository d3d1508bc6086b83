"""Cache configuration shared by the settings and the tests that break Redis."""

from __future__ import annotations

from collections.abc import Callable
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


_scripts: dict[str, Any] = {}


def redis_script(source: str) -> Callable[[list[str], list[Any]], Any] | None:
    """A Lua script to run on the default cache's Redis: several commands in one round
    trip, and cheaper in redis-py than a pipeline. The callable takes cache keys (the
    cache's prefix is added here) and arguments. ``None`` when the cache isn't Redis
    (the SQLite smoke run's local memory): the caller uses the cache API instead.
    Integers written raw stay readable through the cache API (django-redis stores
    those unpickled)."""
    from django.core.cache import caches
    from django_redis.cache import RedisCache

    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        return None
    client = backend.client.get_client(write=True)
    script = _scripts.get(source)
    if script is None:  # registered once per process: EVALSHA, loaded again if Redis forgot
        script = _scripts[source] = client.register_script(source)

    def run(keys: list[str], args: list[Any]) -> Any:
        made = [backend.make_and_validate_key(key) for key in keys]
        return script(keys=made, args=args, client=client)

    return run
