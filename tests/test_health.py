"""Health endpoints: live never touches dependencies; the report names each component."""

from __future__ import annotations

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
    assert set(body["components"]) == {"database", "redis", "broker", "breakers"}
    assert body["status"] in {"healthy", "degraded"}


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
