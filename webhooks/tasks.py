"""Celery tasks of the inbox: drain what arrives, sweep what is due, prune old rows."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from askpro.celery import app
from tenants.context import all_tenants
from tenants.tasks import TenantTask
from webhooks import inbox, processing
from webhooks.models import EventStatus, WebhookEvent

logger = logging.getLogger(__name__)

SWEEP_BATCH = 2000  # due events queued per sweep
PROCESS_BATCH = 50  # events per batch task: one claim, one message, one task overhead
# Processing tasks: acknowledged after they ran, given back if their worker dies (the
# claim's lease keeps a redelivered message from running an event twice).
_PROCESSING: dict[str, Any] = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "ignore_result": True,
}


@app.task(
    base=TenantTask,
    name="webhooks.process_event",
    soft_time_limit=30,
    time_limit=60,
    **_PROCESSING,
)
def process_webhook_event(*, company_id: int, event_id: int) -> str:
    return processing.process(event_id)


@app.task(
    name="webhooks.drain",
    soft_time_limit=120,
    time_limit=180,
    **_PROCESSING,
)
def drain_inbox() -> dict[str, int]:
    """What ingestion queues: process the oldest received events of every company, a
    batch at a time, each event in its own company (webhooks.inbox)."""
    inbox.drain_started()
    events = processing.claim_received(PROCESS_BATCH)
    if len(events) == PROCESS_BATCH:  # more may wait: another process takes the next batch
        inbox.request_drain()
    return processing.run_claimed(events)


@app.task(
    base=TenantTask,
    name="webhooks.process_batch",
    soft_time_limit=120,
    time_limit=180,
    **_PROCESSING,
)
def process_webhook_batch(*, company_id: int, event_ids: list[int]) -> dict[str, int]:
    """The sweeper's unit of work: up to PROCESS_BATCH due events of one company."""
    return processing.process_many(event_ids)


def due_events(now: timedelta | None = None) -> list[tuple[int, int]]:
    """(company_id, event_id) of events to (re)queue: failed and due, received but not
    picked up, or processing with an expired lease (a worker died)."""
    moment = timezone.now()
    not_requeued_lately = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=moment)
    due = (
        Q(status=EventStatus.FAILED, next_attempt_at__lte=moment)
        | (
            Q(status=EventStatus.RECEIVED, received_at__lt=moment - settings.WEBHOOK_STUCK_AFTER)
            & not_requeued_lately
        )
        | Q(status=EventStatus.PROCESSING, lease_until__lt=moment)
    )
    with all_tenants("webhook sweeper: find due events"):
        return list(
            WebhookEvent.objects.filter(due)
            .order_by("received_at")
            .values_list("company_id", "pk")[:SWEEP_BATCH]
        )


def _hold_back(event_ids: list[int]) -> None:
    """A received event just queued again isn't queued again before WEBHOOK_STUCK_AFTER:
    behind a backlog, sweeping every few seconds would otherwise fill the queue with
    copies of the same events faster than workers can skip them."""
    later = timezone.now() + settings.WEBHOOK_STUCK_AFTER
    with all_tenants("webhook sweeper: hold back requeued events"):
        WebhookEvent.objects.filter(pk__in=event_ids, status=EventStatus.RECEIVED).update(
            next_attempt_at=later
        )


@app.task(name="webhooks.sweep")
def sweep_webhooks() -> int:
    """Queue every due event (beat, every 30 s; or by hand)."""
    due = due_events()
    _hold_back([event_id for _, event_id in due])
    by_company: dict[int, list[int]] = {}
    for company_id, event_id in due:
        by_company.setdefault(company_id, []).append(event_id)
    for company_id, event_ids in by_company.items():
        for start in range(0, len(event_ids), PROCESS_BATCH):
            chunk = event_ids[start : start + PROCESS_BATCH]
            process_webhook_batch.delay(company_id=company_id, event_ids=chunk)
    if due:
        logger.info("webhook sweeper queued %s event(s)", len(due))
    return len(due)


@app.task(name="webhooks.prune")
def prune_webhooks() -> tuple[int, int]:
    """Drop payloads of finished events after the payload retention; delete rows after the
    de-duplication retention, which outlasts every provider's retries (Stripe: 3 days)."""
    now = timezone.now()
    finished = [EventStatus.PROCESSED, EventStatus.IGNORED]
    with all_tenants("webhook retention"):
        emptied = (
            WebhookEvent.objects.filter(
                status__in=finished,
                received_at__lt=now - settings.WEBHOOK_PAYLOAD_RETENTION,
            )
            .exclude(payload={})
            .update(payload={})
        )
        deleted, _ = WebhookEvent.objects.filter(
            status__in=finished, received_at__lt=now - settings.WEBHOOK_DEDUP_RETENTION
        ).delete()
    return emptied, deleted


@app.task(name="webhooks.expire_call_data")
def expire_call_data() -> tuple[int, int]:
    """Blank call transcripts, summaries and recording links older than
    ``CALL_DATA_RETENTION_DAYS`` (beat, hourly); returns (calls, events) changed."""
    from bookings.privacy.retention import expire_call_data as expire

    return expire()
