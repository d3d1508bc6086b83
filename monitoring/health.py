"""Component checks behind /health and /health/ready; each is short and bounded."""

from __future__ import annotations

from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import connection


@dataclass(frozen=True, slots=True)
class Component:
    status: str  # "ok" | "degraded" | "down"
    detail: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"status": self.status, "detail": self.detail}


def check_database() -> Component:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        return Component("down", f"query failed: {type(exc).__name__}")
    if connection.vendor != "postgresql":
        return Component("degraded", f"{connection.vendor}: development database, no RLS")
    if _bypasses_rls():
        return Component("degraded", "connected as a role that bypasses row-level security")
    return Component("ok", "postgresql")


def _bypasses_rls() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")
        row = cursor.fetchone()
    return bool(row and row[0])


def _ping(url: str) -> None:
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        client.ping()
    finally:
        client.close()


def check_redis() -> Component:
    if not settings.REDIS_URL:
        return Component("degraded", "REDIS_URL not set: local cache and process-local state")
    try:
        _ping(settings.REDIS_URL)
    except redis.RedisError as exc:
        return Component("down", f"ping failed: {type(exc).__name__}")
    return Component("ok", "redis")


def check_broker() -> Component:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return Component("degraded", "no broker: tasks run in the request (eager)")
    url = str(settings.CELERY_BROKER_URL)
    if not url.startswith(("redis://", "rediss://")):
        from askpro.celery import app

        try:
            with app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=1)
        except Exception as exc:
            return Component("down", f"connect failed: {type(exc).__name__}")
        return Component("ok", url.split("://", 1)[0])
    try:
        _ping(url)
    except redis.RedisError as exc:
        return Component("down", f"ping failed: {type(exc).__name__}")
    return Component("ok", "redis")


def check_breakers() -> Component:
    """Open breakers, or breakers kept per process (no Redis), make the report degraded."""
    from integrations.breakers import NAMES, get_breaker
    from integrations.breakers.core import store_kind

    states = {name: get_breaker(name).snapshot().effective for name in NAMES}
    detail = ", ".join(f"{name} {state}" for name, state in states.items())
    store = store_kind()
    if store != "redis":
        return Component("degraded", f"{store}; {detail}")
    if any(state != "closed" for state in states.values()):
        return Component("degraded", detail)
    return Component("ok", detail)


def overall(components: dict[str, Component]) -> str:
    """Database down → unhealthy; anything else not ok → degraded (docs/OPERATIONS.md)."""
    if components["database"].status == "down":
        return "unhealthy"
    if any(c.status != "ok" for c in components.values()):
        return "degraded"
    return "healthy"
