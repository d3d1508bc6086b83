"""Apply a stored event: claim it, run its handler once, record the outcome.

The row is the state machine: received → processing (with a lease) → processed |
ignored | failed (attempts, next attempt with backoff) → dead after MAX_ATTEMPTS.
The claim is a conditional UPDATE, so two workers can't both run one event, and a
worker that died leaves a lease the sweeper notices.
"""

from __future__ import annotations

import logging
import random
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from webhooks.handlers import PermanentFailure, handler_for
from webhooks.models import EventStatus, WebhookEvent

logger = logging.getLogger(__name__)

CLAIMABLE = Q(status__in=[EventStatus.RECEIVED, EventStatus.FAILED])


def claim(event_id: int) -> WebhookEvent | None:
    """Take the event for processing, or ``None`` if it is done or someone holds it."""
    now = timezone.now()
    taken = (
        WebhookEvent.objects.filter(pk=event_id)
        .filter(CLAIMABLE | Q(status=EventStatus.PROCESSING, lease_until__lt=now))
        .update(
            status=EventStatus.PROCESSING,
            lease_until=now + settings.WEBHOOK_LEASE,
        )
    )
    return WebhookEvent.objects.get(pk=event_id) if taken else None


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
