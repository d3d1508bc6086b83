"""Health endpoints: live never touches dependencies; the report names each component."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from django.test import Client, override_settings

pytestmark = pytest.mark.smoke


def test_live_answers_without_the_database() -> None:
    # No django_db mark: any database access here would raise.
    response = Client().get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_the_report_lists_each_component() -> None:
    body = Client().get("/health").json()
    assert set(body["components"]) == {
        "database",
        "redis",
        "broker",
        "workers",
        "breakers",
        "inbox",
        "migrations",
    }
    assert body["status"] in {"healthy", "degraded"}
    assert body["components"]["migrations"] == {"status": "ok", "detail": "all applied"}


@pytest.mark.django_db
@override_settings(REDIS_URL=None, CELERY_TASK_ALWAYS_EAGER=True)
def test_without_redis_the_report_says_degraded_and_why() -> None:
    body = Client().get("/health").json()
    assert body["status"] == "degraded"
    assert body["components"]["redis"]["status"] == "degraded"
    assert "REDIS_URL" in body["components"]["redis"]["detail"]


@pytest.mark.django_db
def test_an_open_breaker_makes_the_report_degraded_but_not_unready() -> None:
    from integrations.breakers import get_breaker, reset_stores

    reset_stores()
    get_breaker("stripe").force("open")
    body = Client().get("/health").json()
    assert body["status"] == "degraded"
    assert body["components"]["breakers"] == {
        "status": "degraded",
        "detail": "calcom closed, retell closed, stripe forced_open",
    }
    assert Client().get("/health/ready").status_code == 200
    get_breaker("stripe").force("reset")


@pytest.mark.django_db
@override_settings(REDIS_URL="redis://127.0.0.1:1/0", CELERY_TASK_ALWAYS_EAGER=True)
def test_with_redis_unreachable_breakers_are_process_local_and_reported() -> None:
    from integrations.breakers import reset_stores

    reset_stores()
    component = Client().get("/health").json()["components"]["breakers"]
    reset_stores()
    assert component["status"] == "degraded"
    assert component["detail"].startswith("local: Redis unreachable")


@pytest.mark.django_db
@override_settings(REDIS_URL="redis://127.0.0.1:1/0", CELERY_TASK_ALWAYS_EAGER=True)
def test_ready_is_503_naming_what_failed() -> None:
    response = Client().get("/health/ready")
    assert response.status_code == 503
    assert response.json()["failed"] == ["redis"]


def test_unknown_api_paths_get_the_error_body() -> None:
    response = Client().get("/api/v1/nope/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.django_db
def test_the_database_is_ok_only_for_a_role_that_rls_binds() -> None:
    from django.db import connection

    from monitoring import health

    if connection.vendor != "postgresql":
        assert health.check_database().status == "degraded"
        return
    assert health.check_database().as_dict() == {"status": "ok", "detail": "postgresql"}
    from unittest import mock

    with mock.patch.object(health, "_bypasses_rls", return_value=True):
        assert "bypasses row-level security" in health.check_database().detail


@pytest.mark.django_db
@override_settings(CELERY_TASK_ALWAYS_EAGER=False)
def test_workers_count_when_their_heartbeat_is_recent() -> None:
    import redis as redis_lib
    from django.conf import settings

    from monitoring import health, workers

    if not settings.REDIS_URL:
        pytest.fail("this test needs Redis")
    client = redis_lib.Redis.from_url(settings.REDIS_URL)
    client.delete(workers.KEY)
    silent = health.check_workers()
    assert (silent.status, silent.detail) == ("down", "no worker seen in 60 s")
    client.hset(workers.KEY, "celery@gone", "1000.0")  # a worker that stopped long ago
    assert health.check_workers().status == "down"
    workers.beat("celery@alive")
    assert health.check_workers().as_dict() == {"status": "ok", "detail": "1 worker(s) seen"}
    client.delete(workers.KEY)


@pytest.mark.django_db
def test_no_workers_is_degraded_not_unhealthy() -> None:
    from monitoring import health

    with mock.patch.object(health, "check_workers", return_value=health.Component("down")):
        body = Client().get("/health")
    assert body.status_code == 200
    assert body.json()["status"] == "degraded"


def test_an_inbox_falling_behind_makes_the_report_degraded(world: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from monitoring import health
    from tenants.context import all_tenants, tenant_context
    from webhooks.models import WebhookEvent

    with all_tenants("test: an empty backlog"):
        WebhookEvent.objects.update(status="processed")
    with tenant_context(world.a):
        event = WebhookEvent.objects.first()
        assert event is not None
    assert health.check_inbox().as_dict() == {"status": "ok", "detail": "nothing waiting"}
    with tenant_context(world.a):
        WebhookEvent.objects.filter(pk=event.pk).update(
            status="failed", received_at=timezone.now() - timedelta(minutes=12)
        )
    inbox = health.check_inbox()
    assert inbox.status == "degraded"
    assert inbox.detail == "oldest unprocessed event 720 s old"


@pytest.mark.django_db
def test_unapplied_migrations_make_the_report_degraded() -> None:
    from types import SimpleNamespace

    from monitoring import health

    fake_plan = [(SimpleNamespace(app_label="bookings", name="0099_future"), False)]
    health._migrations = None
    with mock.patch(
        "django.db.migrations.executor.MigrationExecutor.migration_plan", return_value=fake_plan
    ):
        component = health.check_migrations()
    health._migrations = None
    assert component.as_dict() == {
        "status": "degraded",
        "detail": "1 unapplied: bookings.0099_future",
    }
