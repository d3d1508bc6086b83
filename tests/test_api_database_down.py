"""PostgreSQL out of reach: the API answers 503 ``unavailable`` with Retry-After, not 500.

The outage is real: Django's connection is pointed at a port nothing listens on (or
its socket is closed under it) for one request, then put back.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import pytest
from django.db import connection, transaction
from django.test import Client
from rest_framework.request import Request
from rest_framework.response import Response

from bookings.api.views import ServiceViewSet
from tests.conftest import World, login, token_client

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="connection failures of PostgreSQL"
)

SERVICES = "/api/v1/services/"


def _free_port() -> int:
    """A local port nothing listens on (bound for a moment, then let go)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@contextmanager
def database_unreachable() -> Iterator[None]:
    """New connections go to a closed port for the block; the real one comes back after."""
    saved = connection.settings_dict["HOST"], connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["HOST"] = "127.0.0.1"
    connection.settings_dict["PORT"] = str(_free_port())
    try:
        yield
    finally:
        connection.settings_dict["HOST"], connection.settings_dict["PORT"] = saved
        connection.close()
        connection.ensure_connection()


@contextmanager
def connection_dropped() -> Iterator[None]:
    """The open connection's socket dies under Django (a server restart, a network cut)."""
    connection.ensure_connection()
    assert connection.connection is not None
    connection.connection.close()
    try:
        yield
    finally:
        connection.close()
        connection.ensure_connection()


def assert_unavailable(response: Any) -> None:
    assert response.status_code == 503, response.content
    assert response.json()["error"]["code"] == "unavailable"
    assert response["Retry-After"] == "30"
    assert b"Traceback" not in response.content
    assert b"127.0.0.1" not in response.content


@pytest.mark.django_db(transaction=True)
def test_an_api_request_while_the_database_is_down_is_503_unavailable(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    api = token_client(world.owner_a, "alpha")
    with caplog.at_level(logging.WARNING), database_unreachable():
        response = api.get(SERVICES)
    assert_unavailable(response)
    warnings = [r for r in caplog.records if r.name == "askpro.errors"]
    assert [(r.levelname, r.getMessage()) for r in warnings] == [
        ("WARNING", "database unreachable; answering 503")
    ]
    assert not [r for r in caplog.records if r.name == "django.request"]
    assert not [r for r in caplog.records if r.exc_info]
    # The database back, the same client is answered as usual.
    assert api.get(SERVICES).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_a_connection_dropped_mid_session_is_503_unavailable(world: World) -> None:
    api = token_client(world.owner_a, "alpha")
    with connection_dropped():
        response = api.get(SERVICES)
    assert_unavailable(response)


@pytest.mark.django_db(transaction=True)
def test_a_booking_with_an_idempotency_key_is_503_while_the_database_is_down(
    world: World,
) -> None:
    api = token_client(world.owner_a, "alpha")
    with database_unreachable():
        response = api.post(
            "/api/v1/appointments/", {}, format="json", HTTP_IDEMPOTENCY_KEY="outage-1"
        )
    assert_unavailable(response)


@pytest.mark.django_db(transaction=True)
def test_a_session_user_of_the_api_gets_503_too(world: World) -> None:
    # Session users are looked up by middleware as well as by DRF: the outage reaches
    # Django's handler500, which must answer the same.
    client = login(world.owner_a)
    client.raise_request_exception = False
    with database_unreachable():
        response = client.get(SERVICES, HTTP_X_COMPANY="alpha")
    assert_unavailable(response)


@pytest.mark.django_db(transaction=True)
def test_the_admin_while_the_database_is_down_is_a_plain_503(world: World) -> None:
    client = login(world.owner_a)
    client.raise_request_exception = False
    with database_unreachable():
        response = client.get("/admin/")
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert response["Content-Type"].startswith("text/plain")
    assert b"Traceback" not in response.content


@pytest.mark.django_db(transaction=True)
def test_health_reports_the_database_down_as_unhealthy() -> None:
    with database_unreachable():
        report = Client().get("/health")
        ready = Client().get("/health/ready")
    assert report.status_code == 503
    assert report.json()["status"] == "unhealthy"
    assert report.json()["components"]["database"]["status"] == "down"
    assert ready.status_code == 503
    assert "database" in ready.json()["failed"]


# --- which database errors are an outage: real errors, raised by PostgreSQL ------------


def _raising(sqlstate: str) -> Any:
    """A list view that makes PostgreSQL raise an error with ``sqlstate``."""

    def list_view(self: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "DO $$ BEGIN RAISE EXCEPTION 'injected' USING ERRCODE = %s; END $$",
                [sqlstate],
            )
        return Response([])

    return list_view


@pytest.mark.parametrize(
    ("sqlstate", "status", "code"),
    [
        ("08006", 503, "unavailable"),  # connection failure
        ("08001", 503, "unavailable"),  # unable to establish a connection
        ("57P01", 503, "unavailable"),  # admin shutdown
        ("57P02", 503, "unavailable"),  # crash shutdown
        ("57P03", 503, "unavailable"),  # cannot connect now
        ("57014", 500, "internal"),  # statement timeout
        ("55P03", 500, "internal"),  # lock not available
        ("40P01", 500, "internal"),  # deadlock
        ("53300", 500, "internal"),  # too many connections: not a class-08 failure
    ],
)
def test_only_connection_level_errors_are_503(
    world: World, sqlstate: str, status: int, code: str
) -> None:
    api = token_client(world.owner_a, "alpha")
    with mock.patch.object(ServiceViewSet, "list", _raising(sqlstate)):
        response = api.get(SERVICES)
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["code"] == code
    assert b"Traceback" not in response.content
    assert b"injected" not in response.content
    if status == 500:
        assert "Retry-After" not in response
        assert error["id"]


def test_an_ordinary_error_is_still_500_internal(world: World) -> None:
    def broken(self: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        raise RuntimeError("a bug")

    api = token_client(world.owner_a, "alpha")
    with mock.patch.object(ServiceViewSet, "list", broken):
        response = api.get(SERVICES)
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal"
    assert "Retry-After" not in response


def test_the_schema_documents_the_503_with_retry_after(world: World) -> None:
    schema = token_client(world.owner_a, "alpha").get(
        "/api/schema/", HTTP_ACCEPT="application/json"
    )
    operations = [
        operation
        for path, item in schema.json()["paths"].items()
        if path.startswith("/api/v1/")
        for operation in item.values()
        if isinstance(operation, dict) and "responses" in operation
    ]
    assert operations
    for operation in operations:
        unavailable = operation["responses"]["503"]
        assert "Retry-After" in unavailable["headers"]
