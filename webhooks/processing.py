"""Apply a stored event: claim it, run its handler once, record the outcome.

The row is the state machine: received → processing (with a lease) → processed |
ignored | failed (attempts, next attempt with backoff) → dead after MAX_ATTEMPTS.
The claim is a conditional UPDATE, so two workers can't both run one event, and a
worker that died leaves a lease the sweeper notices.
"""

from __future__ import annotations

import logging
import random
import time
from datetime import datetime, timedelta

import structlog
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from monitoring import metrics
from tenants.context import all_tenants, tenant_context
from webhooks.handlers import PermanentFailure, handler_for
from webhooks.models import EventStatus, WebhookEvent

logger = logging.getLogger(__name__)

CLAIMABLE = Q(status__in=[EventStatus.RECEIVED, EventStatus.FAILED])


def _claimable(now: datetime) -> Q:
    return CLAIMABLE | Q(status=EventStatus.PROCESSING, lease_until__lt=now)


def claim(event_id: int) -> WebhookEvent | None:
    """Take the event for processing, or ``None`` if it is done or someone holds it."""
    now = timezone.now()
    taken = (
        WebhookEvent.objects.filter(pk=event_id)
        .filter(_claimable(now))
        .update(status=EventStatus.PROCESSING, lease_until=now + settings.WEBHOOK_LEASE)
    )
    return WebhookEvent.objects.get(pk=event_id) if taken else None


def claim_many(event_ids: list[int]) -> list[WebhookEvent]:
    """Take whichever of ``event_ids`` are claimable, in a few statements for the lot.

    Rows another worker has locked right now are skipped, not waited for: that worker
    is claiming them.
    """
    return _claim(Q(pk__in=event_ids) & _claimable(timezone.now()), limit=None)


def claim_received(limit: int) -> list[WebhookEvent]:
    """Take the ``limit`` oldest received events of every company (the drain's batch)."""
    with all_tenants("webhook drain: claim the oldest received events"):
        return _claim(Q(status=EventStatus.RECEIVED), limit=limit)


def _claim(which: Q, limit: int | None) -> list[WebhookEvent]:
    now = timezone.now()
    with transaction.atomic():
        candidates = (
            WebhookEvent.objects.filter(which)
            .order_by("received_at", "pk")
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)
        )
        ids = list(candidates if limit is None else candidates[:limit])
        if not ids:
            return []
        WebhookEvent.objects.filter(pk__in=ids).update(
            status=EventStatus.PROCESSING, lease_until=now + settings.WEBHOOK_LEASE
        )
        return list(WebhookEvent.objects.filter(pk__in=ids).order_by("received_at", "pk"))


def backoff(attempts: int) -> timedelta:
    """Exponential, capped at an hour, with full jitter so retries don't march together."""
    ceiling = min(3600.0, 10.0 * 2 ** max(attempts - 1, 0))
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))  # noqa: S311 - jitter


def short_error(exc: BaseException) -> str:
    """A one-line reason for the row: never a traceback, never a payload."""
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:500]


def process(event_id: int) -> str:
    """Process one event (inside its company's tenant); return the status it ends in."""
    event = claim(event_id)
    if event is None:
        return "skipped"
    status, seconds = _run(event)
    _observe(event, status, seconds)
    return status


def process_many(event_ids: list[int]) -> dict[str, int]:
    """Claim a batch (the sweeper's backlog) and process each claimed event in its own
    transaction; return how many ended in each status."""
    return run_claimed(claim_many(event_ids))


def run_claimed(events: list[WebhookEvent]) -> dict[str, int]:
    """Process claimed events; how many ended in each status.

    The lot shares one transaction -- one commit, one WAL flush, instead of one per
    event -- and each event runs in a savepoint of its own, so a failing handler rolls
    back only its event (recorded ``failed``) and the others commit. Handlers make no
    provider calls (those go through the outbox, queued on commit), so the transaction
    holds no lock across the network. A worker that dies mid-batch leaves the lot
    ``processing``; their leases expire and the sweeper hands them out again.
    """
    with transaction.atomic():
        done = [(event, *_run(event)) for event in events]
    outcomes: dict[str, int] = {}
    for event, status, seconds in done:  # measured once committed
        _observe(event, status, seconds)
        outcomes[status] = outcomes.get(status, 0) + 1
    return outcomes


def _run(event: WebhookEvent) -> tuple[str, float]:
    """Apply a claimed event in its company, with its delivery's request id on the log
    lines; its final status and how long it took."""
    started = time.perf_counter()
    context = {"webhook_event_id": event.pk, "request_id": event.request_id or None}
    with tenant_context(event.company_id), structlog.contextvars.bound_contextvars(**context):
        status = _apply(event)
    return status, time.perf_counter() - started


def _observe(event: WebhookEvent, status: str, seconds: float) -> None:
    metrics.webhook_processing_seconds.labels(event.provider).observe(seconds)
    metrics.webhook_events.labels(event.provider, status).inc()
    if status != EventStatus.FAILED:  # final: how long from receipt to here
        lag = (timezone.now() - event.received_at).total_seconds()
        metrics.webhook_lag_seconds.labels(event.provider).observe(lag)


def _apply(event: WebhookEvent) -> str:
    """Run the claimed event's handler and record its outcome on the row."""
    handler = handler_for(event.provider, event.event_type)
    attempts = event.attempts + 1
    if handler is None:
        _finish(event, EventStatus.IGNORED, attempts)
        return EventStatus.IGNORED
    try:
        with transaction.atomic():
            handler(event)
            _finish(event, EventStatus.PROCESSED, attempts)
    except Exception as exc:
        permanent = isinstance(exc, PermanentFailure) or attempts >= WebhookEvent.MAX_ATTEMPTS
        status = EventStatus.DEAD if permanent else EventStatus.FAILED
        WebhookEvent.objects.filter(pk=event.pk).update(
            status=status,
            attempts=attempts,
            lease_until=None,
            next_attempt_at=None if permanent else timezone.now() + backoff(attempts),
            last_error=short_error(exc),
        )
        logger.warning(
            "webhook %s %s failed (attempt %s): %s",
            event.pk,
            event.event_type,
            attempts,
            short_error(exc),
        )
        return status
    return EventStatus.PROCESSED


def _finish(event: WebhookEvent, status: str, attempts: int) -> None:
    WebhookEvent.objects.filter(pk=event.pk).update(
        status=status,
        attempts=attempts,
        lease_until=None,
        next_attempt_at=None,
        last_error="",
        processed_at=timezone.now(),
    )


def reset_for_replay(events: list[WebhookEvent]) -> None:
    """Make dead or failed events claimable again, with a fresh attempt budget."""
    WebhookEvent.objects.filter(pk__in=[e.pk for e in events]).update(
        status=EventStatus.RECEIVED,
        attempts=0,
        next_attempt_at=None,
        lease_until=None,
        last_error="",
    )
