"""Processing the inbox: claim once, handle once, retry with backoff, die, replay, sweep."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from tenants.context import all_tenants, tenant_context
from tests.conftest import World
from tests.factories import WebhookEndpointFactory, WebhookEventFactory
from webhooks import handlers, processing, tasks
from webhooks.models import EventStatus, WebhookEndpoint, WebhookEvent

calls: list[int] = []


@pytest.fixture
def test_handler() -> Iterator[dict[str, Any]]:
    """Register a handler for ("stripe", "test.event") whose behaviour a test controls."""
    behaviour: dict[str, Any] = {"fail": 0, "permanent": False}
    calls.clear()

    def handle(event: WebhookEvent) -> None:
        calls.append(event.pk)
        if behaviour["fail"] > 0:
            behaviour["fail"] -= 1
            if behaviour["permanent"]:
                raise handlers.PermanentFailure("bad data")
            raise RuntimeError("provider timeout\nTraceback (most recent call last): ...")

    handlers._load()
    handlers._HANDLERS[("stripe", "test.event")] = handle
    yield behaviour
    del handlers._HANDLERS[("stripe", "test.event")]


@pytest.fixture
def event(world: World) -> WebhookEvent:
    with tenant_context(world.a):
        WebhookEndpoint.objects.all().delete()
        endpoint = WebhookEndpointFactory(provider="stripe")
        return WebhookEventFactory(endpoint=endpoint, event_type="test.event")


def reload(event: WebhookEvent) -> WebhookEvent:
    with all_tenants("test"):
        return WebhookEvent.objects.get(pk=event.pk)


def run(event: WebhookEvent) -> str:
    return tasks.process_webhook_event.delay(company_id=event.company_id, event_id=event.pk).get()


def test_an_event_is_handled_once_and_marked_processed(event: Any, test_handler: Any) -> None:
    assert run(event) == EventStatus.PROCESSED
    assert run(event) == "skipped"  # processed events can't be claimed again
    assert calls == [event.pk]
    fresh = reload(event)
    assert fresh.status == EventStatus.PROCESSED
    assert fresh.processed_at is not None
    assert fresh.attempts == 1


def test_an_event_without_a_handler_is_ignored(world: World) -> None:
    with tenant_context(world.a):
        unknown = WebhookEventFactory(event_type="customer.created")
    assert run(unknown) == EventStatus.IGNORED


def test_a_failure_is_retried_later_with_a_short_error(event: Any, test_handler: Any) -> None:
    test_handler["fail"] = 1
    assert run(event) == EventStatus.FAILED
    fresh = reload(event)
    assert fresh.attempts == 1
    assert fresh.next_attempt_at > timezone.now()
    assert fresh.last_error == "RuntimeError: provider timeout"
    assert "Traceback" not in fresh.last_error
    assert run(event) == EventStatus.PROCESSED


def test_after_the_last_attempt_an_event_is_dead(event: Any, test_handler: Any) -> None:
    test_handler["fail"] = WebhookEvent.MAX_ATTEMPTS
    outcomes = [run(event) for _ in range(WebhookEvent.MAX_ATTEMPTS)]
    assert outcomes[-1] == EventStatus.DEAD
    assert set(outcomes[:-1]) == {EventStatus.FAILED}
    assert run(event) == "skipped"


def test_a_permanent_failure_is_dead_at_once(event: Any, test_handler: Any) -> None:
    test_handler.update(fail=1, permanent=True)
    assert run(event) == EventStatus.DEAD


def test_backoff_grows_and_has_jitter() -> None:
    firsts = {processing.backoff(1).total_seconds() for _ in range(20)}
    assert all(5 <= s <= 10 for s in firsts)
    assert len(firsts) > 1
    assert all(1800 <= processing.backoff(n).total_seconds() <= 3600 for n in (10, 12, 30))


def test_a_claimed_event_cannot_be_claimed_twice_until_its_lease_expires(event: Any) -> None:
    with tenant_context(event.company_id):
        assert processing.claim(event.pk) is not None
        assert processing.claim(event.pk) is None
        WebhookEvent.objects.filter(pk=event.pk).update(
            lease_until=timezone.now() - timedelta(seconds=1)
        )
        assert processing.claim(event.pk) is not None


def test_the_sweeper_queues_due_stuck_and_orphaned_events(world: World, test_handler: Any) -> None:
    now = timezone.now()
    with tenant_context(world.a):
        WebhookEvent.objects.all().delete()
        endpoint = WebhookEndpoint.objects.get(provider="stripe")
        rows = {
            "due": WebhookEventFactory(
                endpoint=endpoint,
                event_type="test.event",
                status="failed",
                next_attempt_at=now - timedelta(1),
            ),
            "later": WebhookEventFactory(
                endpoint=endpoint,
                event_type="test.event",
                status="failed",
                next_attempt_at=now + timedelta(1),
            ),
            "stuck": WebhookEventFactory(
                endpoint=endpoint, event_type="test.event", received_at=now - timedelta(minutes=5)
            ),
            "fresh": WebhookEventFactory(endpoint=endpoint, event_type="test.event"),
            "orphaned": WebhookEventFactory(
                endpoint=endpoint,
                event_type="test.event",
                status="processing",
                lease_until=now - timedelta(seconds=1),
            ),
            "running": WebhookEventFactory(
                endpoint=endpoint,
                event_type="test.event",
                status="processing",
                lease_until=now + timedelta(minutes=1),
            ),
        }
    with tenant_context(world.b):
        WebhookEvent.objects.all().delete()
        theirs = WebhookEventFactory(
            endpoint=WebhookEndpoint.objects.get(provider="stripe"),
            event_type="test.event",
            received_at=now - timedelta(hours=1),
        )
    assert tasks.sweep_webhooks.delay().get() == 4
    statuses = {name: reload(row).status for name, row in rows.items()}
    assert statuses == {
        "due": "processed",
        "later": "failed",
        "stuck": "processed",
        "fresh": "received",
        "orphaned": "processed",
        "running": "processing",
    }
    assert reload(theirs).status == "processed"


def stuck_events(world: World, count: int) -> list[WebhookEvent]:
    with tenant_context(world.a):
        WebhookEvent.objects.all().delete()
        endpoint = WebhookEndpoint.objects.get(provider="stripe")
        return [
            WebhookEventFactory(
                endpoint=endpoint,
                event_type="test.event",
                received_at=timezone.now() - timedelta(minutes=5),
            )
            for _ in range(count)
        ]


def test_the_sweeper_queues_batches_per_company_and_holds_requeued_events_back(
    world: World, test_handler: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = stuck_events(world, tasks.PROCESS_BATCH + 3)
    queued: list[dict[str, Any]] = []
    monkeypatch.setattr(tasks.process_webhook_batch, "delay", lambda **kw: queued.append(kw))
    assert tasks.sweep_webhooks() == len(events)
    assert [len(batch["event_ids"]) for batch in queued] == [tasks.PROCESS_BATCH, 3]
    assert {batch["company_id"] for batch in queued} == {world.a.pk}
    assert sorted(i for batch in queued for i in batch["event_ids"]) == sorted(e.pk for e in events)
    # Queued again but not yet picked up: not queued a second time until STUCK_AFTER.
    assert tasks.sweep_webhooks() == 0
    with all_tenants("test: let the hold-back pass"):
        WebhookEvent.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    assert tasks.sweep_webhooks() == len(events)


def test_a_batch_claims_only_what_is_claimable_and_processes_each_once(
    world: World, test_handler: Any
) -> None:
    events = stuck_events(world, 4)
    with tenant_context(world.a):
        WebhookEvent.objects.filter(pk=events[0].pk).update(status="processed")
        WebhookEvent.objects.filter(pk=events[1].pk).update(
            status="processing", lease_until=timezone.now() + timedelta(minutes=1)
        )
        outcome = processing.process_many([e.pk for e in events])
        again = processing.process_many([e.pk for e in events])
    assert outcome == {"processed": 2}
    assert again == {}
    assert len(calls) == 2
    assert [reload(e).status for e in events] == [
        "processed",
        "processing",
        "processed",
        "processed",
    ]


def test_a_dead_event_is_replayed_by_the_command(event: Any, test_handler: Any) -> None:
    test_handler.update(fail=1, permanent=True)
    run(event)
    out = StringIO()
    call_command("replay_webhooks", "--status", "dead", stdout=out)
    assert reload(event).status == EventStatus.PROCESSED
    assert "1 processed" in out.getvalue()


def test_replay_filters_by_id_provider_and_time(event: Any, test_handler: Any) -> None:
    test_handler.update(fail=1, permanent=True)
    run(event)
    out = StringIO()
    call_command("replay_webhooks", "--provider", "retell", stdout=out)
    assert reload(event).status == EventStatus.DEAD
    later = (timezone.now() + timedelta(minutes=1)).isoformat()
    call_command("replay_webhooks", "--since", later, stdout=out)
    assert reload(event).status == EventStatus.DEAD
    call_command("replay_webhooks", "--id", str(event.pk), stdout=out)
    assert reload(event).status == EventStatus.PROCESSED


def test_a_dead_event_is_replayed_from_the_admin(
    world: World, event: Any, test_handler: Any
) -> None:
    from django.urls import reverse

    from tests.conftest import login

    test_handler.update(fail=1, permanent=True)
    run(event)
    response = login(world.owner_a).post(
        reverse("admin:webhooks_webhookevent_changelist"),
        {"action": "replay", "_selected_action": [event.pk]},
    )
    assert response.status_code == 302
    assert reload(event).status == EventStatus.PROCESSED


def test_pruning_drops_old_payloads_but_keeps_keys_for_longer(world: World, settings: Any) -> None:
    now = timezone.now()
    with tenant_context(world.a):
        WebhookEvent.objects.all().delete()
        endpoint = WebhookEndpoint.objects.get(provider="stripe")
        old = WebhookEventFactory(
            endpoint=endpoint, status="processed", received_at=now - timedelta(days=10)
        )
        ancient = WebhookEventFactory(
            endpoint=endpoint, status="processed", received_at=now - timedelta(days=40)
        )
        dead = WebhookEventFactory(
            endpoint=endpoint, status="dead", received_at=now - timedelta(days=40)
        )
    assert tasks.prune_webhooks.delay().get() == (2, 1)
    assert reload(old).payload == {}
    assert reload(old).dedup_key  # still a duplicate if Stripe retries
    assert reload(dead).payload  # dead letters are kept for people to look at
    with all_tenants("test"):
        assert not WebhookEvent.objects.filter(pk=ancient.pk).exists()
