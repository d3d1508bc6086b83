"""Celery tasks of the inbox: process one event, sweep what is due, prune old rows."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from askpro.celery import app
from tenants.context import all_tenants
from tenants.tasks import TenantTask
from webhooks import processing
from webhooks.models import EventStatus, WebhookEvent

logger = logging.getLogger(__name__)

SWEEP_BATCH = 500


@app.task(
    base=TenantTask,
    name="webhooks.process_event",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=30,
    time_limit=60,
    ignore_result=True,
)
def process_webhook_event(*, company_id: int, event_id: int) -> str:
    return processing.process(event_id)


def due_events(now: timedelta | None = None) -> list[tuple[int, int]]:
    """(company_id, event_id) of events to (re)queue: failed and due, received but not
    picked up, or processing with an expired lease (a worker died)."""
    moment = timezone.now()
    due = (
        Q(status=EventStatus.FAILED, next_attempt_at__lte=moment)
        | Q(status=EventStatus.RECEIVED, received_at__lt=moment - settings.WEBHOOK_STUCK_AFTER)
        | Q(status=EventStatus.PROCESSING, lease_until__lt=moment)
    )
    with all_tenants("webhook sweeper: find due events"):
        return list(
            WebhookEvent.objects.filter(due)
            .order_by("received_at")
            .values_list("company_id", "pk")[:SWEEP_BATCH]
        )


@app.task(name="webhooks.sweep")
def sweep_webhooks() -> int:
    """Queue every due event (beat, every 30 s; or by hand)."""
    due = due_events()
    for company_id, event_id in due:
        process_webhook_event.delay(company_id=company_id, event_id=event_id)
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
