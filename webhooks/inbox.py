"""Store a verified delivery exactly once; remember it as seen after it commits.

Processing is queued per burst, not per event: a new event makes sure one
``webhooks.drain`` task is pending (a Redis flag set with ``NX``, in the same round trip
as the "seen" mark) and that task processes the oldest received events in batches.
Publishing a Celery message costs more CPU than storing the event, and at a few hundred
deliveries a second most of them would find a drain already pending.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import structlog
from django.core.cache import cache
from django.db import connection, transaction

from askpro.caches import redis_script
from tenants.context import tenant_context
from webhooks.endpoints import ResolvedEndpoint

logger = logging.getLogger(__name__)

SEEN_FOR_S = 7 * 24 * 3600  # a fast "seen" answer; the unique row stays the truth
# Set while a drain task is queued and hasn't started; it expires by itself so that a
# lost message holds later events back this long at most (the sweeper is the backstop).
DRAIN_PENDING = "webhook-drain-pending"
DRAIN_PENDING_S = 10

# One statement: the unique (company, endpoint, dedup_key) decides, concurrently too.
_INSERT = """
    INSERT INTO webhooks_webhookevent
        (company_id, endpoint_id, provider, event_type, dedup_key, payload, status,
         attempts, last_error, received_at, request_id)
    VALUES (%s, %s, %s, %s, %s, %s, 'received', 0, '', CURRENT_TIMESTAMP, %s)
    ON CONFLICT (company_id, endpoint_id, dedup_key) DO NOTHING
    RETURNING id
"""


def seen_key(endpoint: ResolvedEndpoint, dedup_key: str) -> str:
    return f"webhook-seen:{endpoint.id}:{dedup_key}"


def store_event(
    endpoint: ResolvedEndpoint, event_type: str, dedup_key: str, payload: dict[str, Any]
) -> int | None:
    """Insert the event; return its id, or ``None`` when it was stored before.

    Raises ``DatabaseError`` when it can't be stored (the view answers 503). After the
    commit, and only then, the key is marked seen and processing is queued; a broker
    that is down doesn't undo the stored row (the sweeper queues it later).
    """
    endpoint_id = endpoint.id if connection.vendor == "postgresql" else endpoint.id.hex
    request_id = structlog.contextvars.get_contextvars().get("request_id") or ""
    # One statement, so no explicit transaction: in autocommit it commits by itself (two
    # round trips fewer than BEGIN … COMMIT), and the on_commit hook runs right after it
    # -- or, inside a caller's atomic block, after that commits.
    with tenant_context(endpoint.company_id), connection.cursor() as cursor:
        cursor.execute(
            _INSERT,
            [
                endpoint.company_id,
                endpoint_id,
                endpoint.provider,
                event_type[:100],
                dedup_key,
                json.dumps(payload),
                str(request_id)[:64],
            ],
        )
        row = cursor.fetchone()
    new = row is not None
    seen = seen_key(endpoint, dedup_key)
    transaction.on_commit(lambda: _mark_and_queue(seen, claim_drain=new), robust=True)
    return int(row[0]) if new else None


def request_drain() -> None:
    """Queue a drain unless one is pending (the drain asks when its batch was full)."""
    _mark_and_queue(None, claim_drain=True)


def _mark_and_queue(seen: str | None, *, claim_drain: bool) -> None:
    """Set the seen mark and/or claim the pending-drain flag; queue a drain if claimed."""
    try:
        queue = _mark(seen, claim_drain=claim_drain)
    except Exception:  # Redis down: nothing is marked; a new event still gets its drain
        queue = claim_drain
    if queue:
        _queue_drain()


def drain_started() -> None:
    """A drain is running: events committed from now on must queue the next one (it
    claims only what has committed before its claim)."""
    try:
        cache.delete(DRAIN_PENDING)
    except Exception:  # Redis down: later events queue a drain anyway (see _mark)
        logger.warning("could not clear the pending-drain flag")


# KEYS: the seen mark, the pending-drain flag. ARGV: their lifetimes (s), 0 to leave one
# alone. Returns 1 when this call set the flag.
_MARK = """
if ARGV[1] ~= '0' then redis.call('SET', KEYS[1], 1, 'EX', ARGV[1]) end
if ARGV[2] ~= '0' and redis.call('SET', KEYS[2], 1, 'EX', ARGV[2], 'NX') then return 1 end
return 0
"""


def _mark(seen: str | None, *, claim_drain: bool) -> bool:
    """Set the seen mark and/or the pending-drain flag, in one round trip on Redis;
    return whether this call set the flag (and so must queue the drain)."""
    script = redis_script(_MARK)
    if script is None:
        if seen is not None:
            cache.set(seen, 1, timeout=SEEN_FOR_S)
        return claim_drain and bool(cache.add(DRAIN_PENDING, 1, timeout=DRAIN_PENDING_S))
    lifetimes = [SEEN_FOR_S if seen else 0, DRAIN_PENDING_S if claim_drain else 0]
    return bool(script([seen or DRAIN_PENDING, DRAIN_PENDING], lifetimes))


def _queue_drain() -> None:
    from webhooks.tasks import drain_inbox

    try:
        drain_inbox.delay()
    except Exception:  # broker down: the rows are stored; the sweeper will queue them
        logger.warning("webhook drain not queued (broker unavailable)")
        drain_started()  # don't let the flag hold back the next event's attempt
