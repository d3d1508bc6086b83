"""Call content expires: after ``CALL_DATA_RETENTION_DAYS`` a call keeps its facts (when,
how long, outcome, sentiment) and loses what was said (transcript, summary, recording
link), in the call log and in any Retell event that still holds its payload."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from tenants.context import all_tenants
from webhooks.models import CallLog, WebhookEvent

logger = logging.getLogger(__name__)

BATCH = 500
MAX_BATCHES = 40  # per run: an hourly task catches up over several runs, never runs long
RETELL_CALL_CONTENT = (
    "transcript",
    "transcript_object",
    "transcript_with_tool_calls",
    "recording_url",
    "recording_multi_channel_url",
    "scrubbed_recording_url",
    "scrubbed_recording_multi_channel_url",
    "public_log_url",
    "call_analysis",
    "retell_llm_dynamic_variables",
    "collected_dynamic_variables",
)


def _cutoff(now: datetime | None) -> datetime:
    return (now or timezone.now()) - timedelta(days=settings.CALL_DATA_RETENTION_DAYS)


def expire_calls(now: datetime | None = None) -> int:
    """Blank transcript, recording link and summary of calls older than the retention."""
    cutoff = _cutoff(now)
    old = Q(started_at__lt=cutoff) | Q(started_at__isnull=True, updated_at__lt=cutoff)
    has_content = ~Q(transcript="") | ~Q(recording_url="") | ~Q(summary="")
    expired = 0
    with all_tenants("call data retention"):
        for _ in range(MAX_BATCHES):
            batch = list(
                CallLog.objects.filter(old & has_content).values_list("pk", flat=True)[:BATCH]
            )
            if not batch:
                break
            expired += CallLog.objects.filter(pk__in=batch).update(
                transcript="", recording_url="", summary=""
            )
    return expired


def expire_call_events(now: datetime | None = None) -> int:
    """Strip call content from Retell events older than the retention that still have a
    payload (pruning empties only processed ones; failed and dead ones keep theirs)."""
    cutoff = _cutoff(now)
    expired = 0
    with all_tenants("call data retention"):
        for _ in range(MAX_BATCHES):
            batch = list(
                WebhookEvent.objects.filter(
                    provider="retell",
                    received_at__lt=cutoff,
                    payload__call__has_any_keys=list(RETELL_CALL_CONTENT),
                ).only("pk", "payload")[:BATCH]
            )
            if not batch:
                break
            for event in batch:
                call = {
                    key: value
                    for key, value in event.payload["call"].items()
                    if key not in RETELL_CALL_CONTENT
                }
                WebhookEvent.objects.filter(pk=event.pk).update(
                    payload={**event.payload, "call": call}
                )
            expired += len(batch)
    return expired


def expire_call_data(now: datetime | None = None) -> tuple[int, int]:
    """Both of the above; returns (calls, events) changed."""
    calls, call_events = expire_calls(now), expire_call_events(now)
    if calls or call_events:
        logger.info("call data expired: %s call(s), %s event(s)", calls, call_events)
    return calls, call_events
