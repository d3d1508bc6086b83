"""Component checks behind /health and /health/ready; each is short and bounded.

Overall status (docs/OPERATIONS.md, "Health"): the database down → unhealthy (503);
any other component not ok → degraded (200); all ok → healthy.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import connection
from django.utils import timezone


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


def check_workers() -> Component:
    """A Celery worker's heartbeat seen within the last minute (monitoring.workers)."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return Component("degraded", "no workers: tasks run in the request (eager)")
    if not settings.REDIS_URL:
        return Component("degraded", "REDIS_URL not set: worker heartbeats unknown")
    from monitoring import workers

    try:
        seen = workers.seen()
    except redis.RedisError as exc:
        return Component("degraded", f"heartbeats unreadable: {type(exc).__name__}")
    if not seen:
        return Component("down", f"no worker seen in {workers.SEEN_WITHIN_SECONDS:.0f} s")
    return Component("ok", f"{len(seen)} worker(s) seen")


def check_inbox() -> Component:
    """The oldest webhook event not yet applied; older than the limit → degraded."""
    from monitoring.scrape import UNFINISHED
    from tenants.context import all_tenants
    from webhooks.models import WebhookEvent

    try:
        with all_tenants("health: inbox backlog"):
            first = (
                WebhookEvent.objects.filter(status__in=UNFINISHED)
                .order_by("received_at")
                .values_list("received_at", flat=True)
                .first()
            )
    except Exception as exc:
        return Component("down", f"query failed: {type(exc).__name__}")
    if first is None:
        return Component("ok", "nothing waiting")
    age = (timezone.now() - first).total_seconds()
    limit = settings.HEALTH_INBOX_MAX_AGE.total_seconds()
    detail = f"oldest unprocessed event {age:.0f} s old"
    return Component("degraded" if age > limit else "ok", detail)


_migrations: tuple[float, Component] | None = None
MIGRATIONS_CACHE_SECONDS = 60.0


def check_migrations() -> Component:
    """Unapplied migrations → degraded. Loading the graph costs ~0.1 s: kept a minute."""
    global _migrations
    now = time.monotonic()
    if _migrations is not None and now - _migrations[0] < MIGRATIONS_CACHE_SECONDS:
        return _migrations[1]
    from django.db.migrations.executor import MigrationExecutor

    try:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as exc:
        return Component("down", f"migration state unreadable: {type(exc).__name__}")
    if plan:
        names = ", ".join(f"{m.app_label}.{m.name}" for m, _ in plan[:3])
        result = Component("degraded", f"{len(plan)} unapplied: {names}")
    else:
        result = Component("ok", "all applied")
    _migrations = (now, result)
    return result


def report_components() -> dict[str, Component]:
    return {
        "database": check_database(),
        "redis": check_redis(),
        "broker": check_broker(),
        "workers": check_workers(),
        "breakers": check_breakers(),
        "inbox": check_inbox(),
        "migrations": check_migrations(),
    }


def overall(components: dict[str, Component]) -> str:
    """Database down → unhealthy; anything else not ok → degraded (docs/OPERATIONS.md)."""
    if components["database"].status == "down":
        return "unhealthy"
    if any(c.status != "ok" for c in components.values()):
        return "degraded"
    return "healthy"
