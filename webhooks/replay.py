"""Replay dead or failed events through the same idempotent handlers."""

from __future__ import annotations

from tenants.context import tenant_context
from webhooks import processing
from webhooks.models import WebhookEvent


def replay_events(events: list[WebhookEvent]) -> dict[int, str]:
    """Reset and process each event now, in its own company; return id → final status."""
    outcomes: dict[int, str] = {}
    for event in events:
        with tenant_context(event.company_id):
            processing.reset_for_replay([event])
            outcomes[event.pk] = processing.process(event.pk)
    return outcomes
