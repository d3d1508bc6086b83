"""Store a verified delivery exactly once; remember it as seen after it commits."""

from __future__ import annotations

import json
import logging
from typing import Any

from django.core.cache import cache
from django.db import connection, transaction

from tenants.context import tenant_context
from webhooks.endpoints import ResolvedEndpoint

logger = logging.getLogger(__name__)

SEEN_FOR_S = 7 * 24 * 3600  # a fast "seen" answer; the unique row stays the truth

# One statement: the unique (company, endpoint, dedup_key) decides, concurrently too.
_INSERT = """
    INSERT INTO webhooks_webhookevent
        (company_id, endpoint_id, provider, event_type, dedup_key, payload, status,
         attempts, last_error, received_at)
    VALUES (%s, %s, %s, %s, %s, %s, 'received', 0, '', CURRENT_TIMESTAMP)
    ON CONFLICT (company_id, endpoint_id, dedup_key) DO NOTHING
    RETURNING id
"""


def seen_key(endpoint: ResolvedEndpoint, dedup_key: str) -> str:
    return f"webhook-seen:{endpoint.id}:{dedup_key}"


def already_seen(endpoint: ResolvedEndpoint, dedup_key: str) -> bool:
    """Redis's fast answer; a miss (or Redis down) falls through to the unique insert."""
    return cache.get(seen_key(endpoint, dedup_key)) is not None


def store_event(
    endpoint: ResolvedEndpoint, event_type: str, dedup_key: str, payload: dict[str, Any]
) -> int | None:
    """Insert the event; return its id, or ``None`` when it was stored before.

    Raises ``DatabaseError`` when it can't be stored (the view answers 503). After the
    commit, and only then, the key is marked seen and processing is queued; a broker
    that is down doesn't undo the stored row (the sweeper queues it later).
    """
    endpoint_id = endpoint.id if connection.vendor == "postgresql" else endpoint.id.hex
    with tenant_context(endpoint.company_id), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                _INSERT,
                [
                    endpoint.company_id,
                    endpoint_id,
                    endpoint.provider,
                    event_type[:100],
                    dedup_key,
                    json.dumps(payload),
                ],
            )
            row = cursor.fetchone()
        if row is None:
            transaction.on_commit(lambda: _mark_seen(endpoint, dedup_key))
            return None
        event_id = int(row[0])
        transaction.on_commit(lambda: _mark_seen(endpoint, dedup_key))
        transaction.on_commit(lambda: _enqueue(endpoint.company_id, event_id), robust=True)
    return event_id


def _mark_seen(endpoint: ResolvedEndpoint, dedup_key: str) -> None:
    cache.set(seen_key(endpoint, dedup_key), 1, timeout=SEEN_FOR_S)


def _enqueue(company_id: int, event_id: int) -> None:
    from webhooks.tasks import process_webhook_event

    try:
        process_webhook_event.delay(company_id=company_id, event_id=event_id)
    except Exception:  # broker down: the row is stored; the sweeper will queue it
        logger.warning("webhook %s stored but not queued (broker unavailable)", event_id)
