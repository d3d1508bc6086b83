"""The inbox as it runs: gunicorn, Celery workers and Redis as real processes."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from django.db import connection

from tenants.context import all_tenants, tenant_context
from tests import signing
from tests.conftest import World
from tests.factories import WebhookEndpointFactory
from tests.live.harness import LiveStack, PrivateRedis, wait_until
from webhooks.models import CallLog, WebhookEndpoint, WebhookEvent

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="live stack"),
    # Other processes must see the test's rows: no wrapping transaction.
    pytest.mark.django_db(transaction=True),
]


def post(stack: LiveStack, path: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(  # noqa: S310 - loopback
        stack.base_url + path,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def stripe_delivery(secret: str, n: int) -> tuple[bytes, dict[str, str]]:
    payload = signing.fixture("stripe/payment_intent.succeeded")
    payload["id"] = f"evt_live_{n}"
    body = json.dumps(payload).encode()
    return body, {"Stripe-Signature": signing.stripe_header(body, secret)}


def statuses(**filters: Any) -> dict[str, int]:
    with all_tenants("test: watch the inbox"):
        rows = WebhookEvent.objects.filter(**filters).values_list("status", flat=True)
        counts: dict[str, int] = {}
        for status in rows:
            counts[status] = counts.get(status, 0) + 1
        return counts


def stripe_endpoint(world: World) -> WebhookEndpoint:
    with tenant_context(world.a):
        WebhookEndpoint.objects.all().delete()
        return WebhookEndpointFactory(provider="stripe", secret="whsec_live")


def store_call_events(world: World, count: int) -> list[int]:
    """``count`` received Retell call_started events, as if accepted by the web tier."""
    with tenant_context(world.a):
        WebhookEndpoint.objects.all().delete()
        endpoint = WebhookEndpointFactory(provider="retell", secret="key_live")
        call = signing.fixture("retell/call_started")["call"]
        events = WebhookEvent.objects.bulk_create(
            WebhookEvent(
                endpoint=endpoint,
                provider="retell",
                event_type="call_started",
                dedup_key=f"call_started:call_live_{n}",
                payload={"event": "call_started", "call": {**call, "call_id": f"call_live_{n}"}},
            )
            for n in range(count)
        )
    return [event.pk for event in events]


def test_signed_deliveries_are_accepted_by_gunicorn_and_processed_by_workers(
    world: World, live: LiveStack
) -> None:
    endpoint = stripe_endpoint(world)
    live.start_web()
    live.start_worker()
    codes = [post(live, endpoint.path, *stripe_delivery("whsec_live", n)) for n in range(20)]
    assert codes == [202] * 20
    assert post(live, endpoint.path, *stripe_delivery("whsec_live", 0)) == 200
    wait_until(lambda: statuses().get("processed") == 20, 60, "20 processed events")


def test_a_thousand_events_with_four_workers_are_each_processed_once(
    world: World, live: LiveStack
) -> None:
    store_call_events(world, 1000)
    for _ in range(2):
        live.start_worker(concurrency=2)
    live.start_beat()  # the sweeper queues received events, as it does in production
    wait_until(lambda: statuses().get("processed") == 1000, 180, "1,000 processed events")
    with all_tenants("test"):
        ours = WebhookEvent.objects.filter(dedup_key__startswith="call_started:call_live_")
        assert set(ours.values_list("attempts", flat=True)) == {1}  # each claimed once
        assert CallLog.objects.filter(call_id__startswith="call_live_").count() == 1000


def test_a_worker_killed_mid_task_leaves_nothing_lost_or_doubled(
    world: World, live: LiveStack
) -> None:
    store_call_events(world, 600)
    first = live.start_worker(concurrency=2)
    live.start_beat()
    wait_until(lambda: statuses().get("processed", 0) >= 100, 120, "a hundred processed")
    live.kill_worker(first)  # SIGKILL, mid-stream
    live.start_worker(concurrency=2)

    wait_until(lambda: statuses().get("processed") == 600, 180, "all processed after the kill")
    with all_tenants("test"):
        assert CallLog.objects.filter(call_id__startswith="call_live_").count() == 600
        ours = WebhookEvent.objects.filter(dedup_key__startswith="call_started:call_live_")
        assert set(ours.values_list("status", flat=True)) == {"processed"}


def test_deliveries_while_redis_is_down_are_acknowledged_and_processed_later(
    world: World, live: LiveStack, private_redis: PrivateRedis
) -> None:
    endpoint = stripe_endpoint(world)
    live.start_web()
    live.start_worker()
    live.start_beat()
    before = [post(live, endpoint.path, *stripe_delivery("whsec_live", n)) for n in range(5)]
    private_redis.stop()
    started = time.monotonic()
    during = [post(live, endpoint.path, *stripe_delivery("whsec_live", n)) for n in range(5, 15)]
    elapsed = time.monotonic() - started
    assert before == [202] * 5
    assert during == [202] * 10, "stored and acknowledged without the broker"
    assert elapsed < 30
    private_redis.start()  # same port: web and workers reconnect by themselves

    wait_until(lambda: statuses().get("processed") == 15, 120, "all processed after Redis")


def test_a_database_that_cannot_be_reached_answers_503(world: World, live: LiveStack) -> None:
    endpoint = stripe_endpoint(world)
    live.database_url = "postgres://askpro_app@127.0.0.1:1/nowhere"
    live.start_web()
    body, headers = stripe_delivery("whsec_live", 1)
    assert post(live, endpoint.path, body, headers) == 503


def test_fifty_concurrent_identical_deliveries_have_one_row_and_one_effect(
    world: World, live: LiveStack
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from bookings.models import Appointment
    from tests.factories import AppointmentFactory
    from webhooks.models import Payment

    endpoint = stripe_endpoint(world)
    with tenant_context(world.a):
        appointment = AppointmentFactory(status="pending", deposit_status="required")
    payload = signing.fixture("stripe/payment_intent.succeeded")
    payload["data"]["object"]["metadata"] = {
        "appointment_id": str(appointment.pk),
        "company_id": str(world.a.pk),
    }
    body = json.dumps(payload).encode()
    headers = {"Stripe-Signature": signing.stripe_header(body, "whsec_live")}
    live.start_web()
    live.start_worker()
    with ThreadPoolExecutor(max_workers=50) as pool:
        codes = list(pool.map(lambda _: post(live, endpoint.path, body, headers), range(50)))
    assert sorted(codes) == [200] * 49 + [202]
    wait_until(lambda: statuses(endpoint_id=endpoint.pk).get("processed") == 1, 60, "processing")
    with tenant_context(world.a):
        assert WebhookEvent.objects.filter(endpoint=endpoint).count() == 1
        assert Payment.objects.filter(appointment=appointment).count() == 1
        fresh = Appointment.objects.get(pk=appointment.pk)
        assert (fresh.status, fresh.deposit_status) == ("confirmed", "paid")
        assert fresh.history.filter(action="deposit").count() == 1
