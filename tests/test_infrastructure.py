"""Database session settings and surviving a Redis outage."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import override_settings

from askpro.caches import redis_cache
from tests.conftest import World, login

DEAD_REDIS = redis_cache("redis://127.0.0.1:1/0")  # nothing listens on port 1


@pytest.mark.django_db
def test_web_connections_carry_statement_and_lock_timeouts() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL session settings")
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        statement_timeout = cursor.fetchone()[0]
        cursor.execute("SHOW lock_timeout")
        lock_timeout = cursor.fetchone()[0]
    assert statement_timeout == "5s"
    assert lock_timeout == "2s"


def test_staff_stay_signed_in_while_redis_is_down(world: World) -> None:
    client = login(world.owner_a)  # the session is in the database as well as the cache
    # override_settings(CACHES=...) makes Django rebuild its cache handlers.
    with override_settings(CACHES={"default": DEAD_REDIS, "sessions": DEAD_REDIS}):
        assert client.get("/admin/tenants/branch/").status_code == 200
        # Writing the session (cache.set/delete) must not fail either.
        assert client.post("/admin/logout/").status_code == 200
