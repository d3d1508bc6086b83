"""Idempotency keys after interrupted requests: a failure frees the key; a claim nobody
could free (process killed, database gone) is taken over after ``ABANDONED_AFTER``, by
exactly one retry, and only by the same request."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.db import connection, connections
from django.utils import timezone
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.test import APIClient, APIRequestFactory

from bookings import saga
from bookings.api import idempotency
from bookings.models import Appointment, IdempotencyRecord
from tenants.context import tenant_context
from tests.conftest import Salon, World, token_client

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL"),
    pytest.mark.django_db(transaction=True),
]

URL = "/api/v1/appointments/"


def payload(salon: Salon, hour: int = 10) -> dict[str, Any]:
    return {
        "service": salon.service.pk,
        "staff": salon.staff.pk,
        "start": salon.at(hour).isoformat(),
        "customer": {"name": "Max Mustermann", "phone": "030 1234567"},
    }


@pytest.fixture(autouse=True)
def _fresh_connection_after(transactional_db: None) -> Iterator[None]:
    """A test that broke the connection must not break the flush after it."""
    yield
    connection.close()


@pytest.fixture
def api(world: World) -> APIClient:
    return token_client(world.owner_a, "alpha")


def post(client: APIClient, body: dict[str, Any], key: str) -> Any:
    return client.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def records(salon: Salon, key: str) -> list[IdempotencyRecord]:
    with tenant_context(salon.company):
        return list(IdempotencyRecord.objects.filter(key=key))


def appointments(salon: Salon) -> int:
    with tenant_context(salon.company):
        return Appointment.objects.filter(start=salon.at(10)).count()


def claimed_by_a_killed_request(
    world: World, salon: Salon, key: str, body: dict[str, Any], age: timedelta
) -> None:
    """The row a request leaves when its process dies after the claim: in progress."""
    raw = APIRequestFactory().post(URL, body, format="json")
    fingerprint = idempotency._fingerprint(Request(raw, parsers=[JSONParser()]))
    with tenant_context(salon.company):
        record = IdempotencyRecord.objects.create(
            user_id=world.owner_a.pk, key=key, request_hash=fingerprint
        )
        IdempotencyRecord.objects.filter(pk=record.pk).update(created_at=timezone.now() - age)


def age_claim(salon: Salon, key: str) -> None:
    with tenant_context(salon.company):
        IdempotencyRecord.objects.filter(key=key).update(
            created_at=timezone.now() - idempotency.ABANDONED_AFTER - timedelta(seconds=1)
        )


# --- a failure frees the key -----------------------------------------------------------


def test_a_request_that_raises_frees_its_key_for_the_retry(api: APIClient, salon: Salon) -> None:
    with mock.patch.object(saga, "book", side_effect=RuntimeError("a bug")):
        failed = post(api, payload(salon), "k-raise")
    assert failed.status_code == 500
    assert records(salon, "k-raise") == []
    retry = post(api, payload(salon), "k-raise")
    assert retry.status_code == 201, retry.json()
    (record,) = records(salon, "k-raise")
    assert (record.in_progress, record.status_code) == (False, 201)


def test_a_request_stopped_by_system_exit_frees_its_key(api: APIClient, salon: Salon) -> None:
    # A worker told to stop mid-request (gunicorn's timeout raises SystemExit).
    with mock.patch.object(saga, "book", side_effect=SystemExit(1)), pytest.raises(SystemExit):
        post(api, payload(salon), "k-exit")
    connections.close_all()  # as the next request would find them
    assert records(salon, "k-exit") == []
    assert post(api, payload(salon), "k-exit").status_code == 201


def test_a_database_error_midway_frees_the_key(api: APIClient, salon: Salon) -> None:
    def refused(**kwargs: Any) -> Any:
        with connection.cursor() as cursor:  # a real error, raised by PostgreSQL
            cursor.execute("DO $$ BEGIN RAISE EXCEPTION 'x' USING ERRCODE = '57P01'; END $$")

    with mock.patch.object(saga, "book", refused):
        failed = post(api, payload(salon), "k-db")
    assert failed.status_code == 503
    assert records(salon, "k-db") == []
    assert post(api, payload(salon), "k-db").status_code == 201


def test_a_connection_dropped_midway_leaves_the_claim_until_it_is_abandoned(
    api: APIClient, salon: Salon, caplog: pytest.LogCaptureFixture
) -> None:
    def dropped(**kwargs: Any) -> Any:
        assert connection.connection is not None
        connection.connection.close()  # the server went away under the request
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")

    with mock.patch.object(saga, "book", dropped), caplog.at_level(logging.WARNING):
        failed = post(api, payload(salon), "k-drop")
    assert failed.status_code == 503
    assert failed.json()["error"]["code"] == "unavailable"
    assert any("idempotency key not released" in r.getMessage() for r in caplog.records)
    connection.close()  # the next request gets a fresh connection

    (claim,) = records(salon, "k-drop")
    assert claim.in_progress
    early = post(api, payload(salon), "k-drop")
    assert early.status_code == 409
    assert early.json()["error"]["code"] == "request_in_progress"

    age_claim(salon, "k-drop")
    late = post(api, payload(salon), "k-drop")
    assert late.status_code == 201, late.json()
    assert appointments(salon) == 1
    assert post(api, payload(salon), "k-drop")["Idempotent-Replayed"] == "true"


# --- a claim nobody freed -------------------------------------------------------------


def test_a_fresh_claim_is_still_409_in_progress(world: World, api: APIClient, salon: Salon) -> None:
    claimed_by_a_killed_request(world, salon, "k-fresh", payload(salon), timedelta(seconds=5))
    response = post(api, payload(salon), "k-fresh")
    assert response.status_code == 409
    assert response["Retry-After"] == "1"
    assert appointments(salon) == 0


def test_a_claim_older_than_abandoned_after_is_taken_over(
    world: World, api: APIClient, salon: Salon
) -> None:
    age = idempotency.ABANDONED_AFTER + timedelta(seconds=1)
    claimed_by_a_killed_request(world, salon, "k-old", payload(salon), age)
    response = post(api, payload(salon), "k-old")
    assert response.status_code == 201, response.json()
    (record,) = records(salon, "k-old")
    assert (record.in_progress, record.status_code) == (False, 201)
    assert record.created_at > timezone.now() - timedelta(minutes=1)
    replay = post(api, payload(salon), "k-old")
    assert replay["Idempotent-Replayed"] == "true"
    assert replay.json() == response.json()
    assert appointments(salon) == 1


def test_an_abandoned_claim_is_not_taken_over_by_another_request(
    world: World, api: APIClient, salon: Salon
) -> None:
    age = idempotency.ABANDONED_AFTER + timedelta(seconds=1)
    claimed_by_a_killed_request(world, salon, "k-other", payload(salon, hour=11), age)
    response = post(api, payload(salon), "k-other")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_mismatch"
    assert appointments(salon) == 0


def test_of_two_concurrent_takeovers_exactly_one_wins(world: World, salon: Salon) -> None:
    age = idempotency.ABANDONED_AFTER + timedelta(seconds=1)
    claimed_by_a_killed_request(world, salon, "k-race", payload(salon), age)
    # Both retries read the abandoned claim before either updates it.
    both_read = threading.Barrier(2, timeout=10)
    manager = IdempotencyRecord.objects
    real_get_or_create = manager.get_or_create

    def get_or_create_then_wait(**kwargs: Any) -> Any:
        found = real_get_or_create(**kwargs)
        both_read.wait()
        return found

    results: list[Any] = []
    lock = threading.Lock()

    def retry() -> None:
        try:
            response = post(token_client(world.owner_a, "alpha"), payload(salon), "k-race")
            with lock:
                results.append(response)
        finally:
            connections.close_all()

    with mock.patch.object(manager, "get_or_create", get_or_create_then_wait):
        threads = [threading.Thread(target=retry) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    answers = sorted((r.status_code, r.json().get("error", {}).get("code")) for r in results)
    assert answers == [(201, None), (409, "request_in_progress")]
    assert appointments(salon) == 1
    (record,) = records(salon, "k-race")
    assert (record.in_progress, record.status_code) == (False, 201)
