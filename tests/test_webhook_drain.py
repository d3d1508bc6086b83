"""Ingestion queues one drain per burst; the drain processes the oldest received events
of every company, each in its own company and with its delivery's request id."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
import structlog
from django.core.cache import cache

from tenants.context import all_tenants, current_company_id, tenant_context
from tests import signing
from tests.conftest import World
from tests.factories import WebhookEndpointFactory, WebhookEventFactory
from tests.test_webhook_ingest import SECRETS, body_of, deliver
from webhooks import handlers, inbox, tasks
from webhooks.models import EventStatus, WebhookEndpoint, WebhookEvent

seen: list[dict[str, Any]] = []


@pytest.fixture
def stripe(world: World) -> WebhookEndpoint:
    with tenant_context(world.a):
        WebhookEndpoint.objects.all().delete()
        return WebhookEndpointFactory(provider="stripe", secret=SECRETS["stripe"])


@pytest.fixture
def recording_handler() -> Iterator[None]:
    """("stripe", "test.event") records the tenant and log context it ran in."""

    def handle(event: WebhookEvent) -> None:
        seen.append(
            {
                "event": event.pk,
                "company": current_company_id(),
                "log": dict(structlog.contextvars.get_contextvars()),
            }
        )

    seen.clear()
    handlers._load()
    handlers._HANDLERS[("stripe", "test.event")] = handle
    yield
    del handlers._HANDLERS[("stripe", "test.event")]


def received_events(world: World, per_company: int) -> list[WebhookEvent]:
    """``per_company`` received test events in company B, then as many in A (older first)."""
    events = []
    for company in (world.b, world.a):
        with tenant_context(company):
            WebhookEndpoint.objects.all().delete()
            endpoint = WebhookEndpointFactory(provider="stripe")
            events += [
                WebhookEventFactory(endpoint=endpoint, event_type="test.event", request_id=f"r{n}")
                for n in range(per_company)
            ]
    return events


def statuses(events: list[WebhookEvent]) -> list[str]:
    with all_tenants("test: read back"):
        by_pk = dict(
            WebhookEvent.objects.filter(pk__in=[e.pk for e in events]).values_list("pk", "status")
        )
    return [by_pk[e.pk] for e in events]


def test_a_burst_of_deliveries_queues_one_drain(
    stripe: WebhookEndpoint, django_capture_on_commit_callbacks: Any
) -> None:
    def committed(event_id: str) -> int:
        with django_capture_on_commit_callbacks(execute=True):
            return int(deliver(stripe, body_of("stripe", id=event_id)).status_code)

    with mock.patch.object(tasks.drain_inbox, "delay") as delay:
        assert [committed(f"evt_{n}") for n in range(3)] == [202, 202, 202]
        assert delay.call_count == 1  # the first queued it; the others found it pending
        inbox.drain_started()  # the drain has begun: what arrives now needs another
        assert committed("evt_9") == 202
        assert delay.call_count == 2
        # A duplicate is remembered as seen but queues nothing.
        inbox.drain_started()
        assert committed("evt_9") == 200
        assert delay.call_count == 2


def test_redis_down_after_the_insert_still_queues_the_drain(
    stripe: WebhookEndpoint,
    django_capture_on_commit_callbacks: Any,
) -> None:
    broken = mock.Mock(side_effect=ConnectionError("redis is down"))
    with (
        mock.patch.object(tasks.drain_inbox, "delay") as delay,
        mock.patch("webhooks.inbox.redis_script", broken),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert deliver(stripe, body_of("stripe")).status_code == 202
    assert broken.called
    assert delay.call_count == 1


def test_a_broker_that_is_down_clears_the_flag_for_the_next_event(
    stripe: WebhookEndpoint,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from kombu.exceptions import OperationalError

    with (
        mock.patch.object(tasks.drain_inbox, "delay", side_effect=OperationalError("no broker")),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert deliver(stripe, body_of("stripe", id="evt_1")).status_code == 202
    assert cache.get(inbox.DRAIN_PENDING) is None  # the next delivery tries again
    with (
        mock.patch.object(tasks.drain_inbox, "delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert deliver(stripe, body_of("stripe", id="evt_2")).status_code == 202
    assert delay.call_count == 1


def test_the_drain_processes_every_companys_events_in_their_own_company(
    world: World, recording_handler: None
) -> None:
    events = received_events(world, per_company=2)
    outcomes = tasks.drain_inbox.apply().get()
    assert outcomes == {EventStatus.PROCESSED: 4}
    assert statuses(events) == [EventStatus.PROCESSED] * 4
    assert [(s["event"], s["company"]) for s in seen] == [(e.pk, e.company_id) for e in events]
    # Each event's lines carry its own delivery's request id and its id.
    assert [(s["log"]["request_id"], s["log"]["webhook_event_id"]) for s in seen] == [
        (e.request_id, e.pk) for e in events
    ]


def test_a_full_batch_asks_for_another_drain_first(
    world: World, recording_handler: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tasks, "PROCESS_BATCH", 3)
    events = received_events(world, per_company=2)
    with mock.patch.object(inbox, "request_drain") as request_drain:
        assert tasks.drain_inbox.apply().get() == {EventStatus.PROCESSED: 3}
    assert request_drain.call_count == 1
    # The oldest three went first; the fourth waits for the drain just asked for.
    assert statuses(events) == [EventStatus.PROCESSED] * 3 + [EventStatus.RECEIVED]
    with mock.patch.object(inbox, "request_drain") as request_drain:
        assert tasks.drain_inbox.apply().get() == {EventStatus.PROCESSED: 1}
    assert request_drain.call_count == 0  # a partial batch: nothing more is waiting


def test_the_drain_leaves_events_it_does_not_own(world: World, recording_handler: None) -> None:
    """Only received events: a failed one waits for its backoff (the sweeper), one being
    processed keeps its lease."""
    events = received_events(world, per_company=1)
    with all_tenants("test: set up"):
        WebhookEvent.objects.filter(pk=events[0].pk).update(status=EventStatus.FAILED)
        WebhookEvent.objects.filter(pk=events[1].pk).update(status=EventStatus.PROCESSING)
    assert tasks.drain_inbox.apply().get() == {}
    assert statuses(events) == [EventStatus.FAILED, EventStatus.PROCESSING]
    assert seen == []


def test_a_delivery_keeps_its_request_id_on_the_row(stripe: WebhookEndpoint) -> None:
    body = body_of("stripe", id="evt_traced")
    headers = {
        **signing.signed_headers("stripe", body, SECRETS["stripe"]),
        "HTTP_X_REQUEST_ID": "call-42",
    }
    assert deliver(stripe, body, headers).status_code == 202
    with all_tenants("test: read back"):
        assert WebhookEvent.objects.get(dedup_key="evt_traced").request_id == "call-42"


def test_a_deactivated_endpoint_is_refused_at_once_in_this_process(
    stripe: WebhookEndpoint,
) -> None:
    """The resolved endpoint is kept between deliveries, but a change forgets it."""
    assert deliver(stripe, body_of("stripe", id="evt_a")).status_code == 202
    with tenant_context(stripe.company_id):
        stripe.active = False
        stripe.save()
    assert deliver(stripe, body_of("stripe", id="evt_b")).status_code == 404


def test_a_failing_event_rolls_back_alone_in_its_batch(
    world: World, recording_handler: None
) -> None:
    """The batch shares one transaction; each event has a savepoint of its own."""
    events = received_events(world, per_company=2)
    record = handlers._HANDLERS[("stripe", "test.event")]

    def handle(event: WebhookEvent) -> None:
        record(event)
        if event.pk == events[1].pk:
            WebhookEvent.objects.filter(pk=events[0].pk).update(last_error="written, then undone")
            raise RuntimeError("provider said no")

    handlers._HANDLERS[("stripe", "test.event")] = handle
    outcomes = tasks.drain_inbox.apply().get()
    assert outcomes == {EventStatus.PROCESSED: 3, EventStatus.FAILED: 1}
    assert statuses(events) == [
        EventStatus.PROCESSED,
        EventStatus.FAILED,
        EventStatus.PROCESSED,
        EventStatus.PROCESSED,
    ]
    with all_tenants("test: read back"):
        rows = {e.pk: e for e in WebhookEvent.objects.filter(pk__in=[e.pk for e in events])}
    assert rows[events[0].pk].last_error == ""  # the failed handler's write was rolled back
    assert rows[events[1].pk].last_error == "RuntimeError: provider said no"
    assert rows[events[1].pk].next_attempt_at is not None  # retried later, by the sweeper
