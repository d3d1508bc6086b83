"""The webhook inbox: ingestion (``webhook``, wrk) and processing (``drain``, Celery).

``webhook``: signed Stripe events posted to the bench company's endpoint, a new event
id each. wrk's Lua can't compute an HMAC, so ``write_events`` signs them just before the
run into one file per wrk thread (``bench/lua/webhook.lua`` reads a line per request).
No worker consumes meanwhile: each event is stored ``received`` (a ``webhooks.drain``
task waits in Redis, one per burst) — pure ingestion.

``drain``: then one Celery worker (``--concurrency 2``) and beat start, with production's
timings (the sweeper requeues only events waiting a minute), and the runner polls
PostgreSQL until no event is left unfinished. It first tops what ingestion stored up to
``DRAIN_EVENTS`` (all of them when ``drain`` runs alone) and queues a drain, as the view
would:
``python -m bench.webhook insert <company> <endpoint> <count>``, as the app role.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from bench.config import DB_NAME, DB_OWNER, LOG_DIR, BenchError
from bench.server import executable, fetch, log_tail, psql, run, running
from bench.wrk import Row
from integrations.simulator.signing import sign_stripe

EVENTS_PER_THREAD = 50_000  # far more than a thread sends in 10 s
DRAIN_EVENTS = 10_000
DRAIN_TIMEOUT_S = 180
POLL_S = 0.25
WORKER_CONCURRENCY = 2
EVENT_TYPE = "payment_intent.succeeded"
UNFINISHED = ("received", "processing", "failed")


def payload(company_id: int, event_id: str) -> dict[str, Any]:
    """The fixture's event (shared/fixtures/stripe/payment_intent.succeeded.json), cut
    down. The metadata names the company but no appointment: the handler finds nothing to
    settle and the event ends ``processed`` — no Payment row, no warning logged."""
    return {
        "id": event_id,
        "object": "event",
        "api_version": "2025-10-29.clover",
        "created": int(time.time()),
        "livemode": False,
        "pending_webhooks": 1,
        "type": EVENT_TYPE,
        "data": {
            "object": {
                "id": f"pi_{event_id[4:]}",
                "object": "payment_intent",
                "amount": 2500,
                "amount_received": 2500,
                "currency": "eur",
                "status": "succeeded",
                "metadata": {"company_id": str(company_id)},
            }
        },
    }


def write_events(
    seed: dict[str, Any],
    threads: int,
    per_thread: int = EVENTS_PER_THREAD,
    tag: str = "bench",
    folder: Path = LOG_DIR / "webhook-events",
) -> Path:
    """``thread-<k>.txt`` in ``folder`` for each wrk thread: "<signature>\\t<body>"
    lines, ids ``evt_<tag>_<k>_<n>``, all signed now (Stripe accepts 300 s). The body is
    ``payload``'s, rendered once and the id put in each line (quick: the observability
    scenario signs ~100,000)."""
    folder.mkdir(parents=True, exist_ok=True)
    secret, company = seed["webhook"]["secret"], seed["company"]["id"]
    now = int(time.time())
    marker = "@@ID@@"
    template = json.dumps(payload(company, f"evt_{marker}"), separators=(",", ":"))
    for thread in range(threads):
        lines = []
        for n in range(per_thread):
            body = template.replace(marker, f"{tag}_{thread}_{n}")
            lines.append(f"{sign_stripe(body.encode(), secret, now)}\t{body}\n")
        (folder / f"thread-{thread}.txt").write_text("".join(lines))
    return folder


def send(base_url: str, seed: dict[str, Any], event_id: str) -> tuple[int | None, str]:
    """One signed event with the id ``event_id``: 202 when the inbox stores it, 200 when
    it already had it."""
    body = json.dumps(payload(seed["company"]["id"], event_id))
    request = urllib.request.Request(  # noqa: S310 -- loopback
        f"{base_url}{seed['webhook']['path']}",
        data=body.encode(),
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Stripe-Signature": sign_stripe(body.encode(), seed["webhook"]["secret"]),
        },
    )
    return fetch(request)


def probe(base_url: str, seed: dict[str, Any]) -> tuple[int | None, str]:
    """One signed event (``evt_bench_probe``): 202 when the inbox stores it."""
    return send(base_url, seed, "evt_bench_probe")


# --- drain ------------------------------------------------------------------------------


def status_counts(company_id: int) -> dict[str, int]:
    rows = psql(
        "SELECT status, count(*) FROM webhooks_webhookevent "  # noqa: S608 -- an int
        f"WHERE company_id = {int(company_id)} GROUP BY status ORDER BY status",
        DB_OWNER,
        DB_NAME,
    )
    return {name: int(n) for name, n in (line.split("|") for line in rows.splitlines())}


def processed_facts(company_id: int) -> tuple[int, float, int, int]:
    """Processed events: count, seconds from the first to the last, how many took more
    than one attempt, and the most attempts any took."""
    line = psql(
        "SELECT count(*), coalesce(extract(epoch FROM max(processed_at) - min(processed_at)),"  # noqa: S608
        " 0), count(*) FILTER (WHERE attempts > 1), coalesce(max(attempts), 0) "
        f"FROM webhooks_webhookevent WHERE company_id = {int(company_id)} "
        "AND status = 'processed'",
        DB_OWNER,
        DB_NAME,
    )
    count, span, retried, most = line.split("|")
    return int(count), float(span), int(retried), int(most)


def celery_worker_args() -> list[str]:
    node = f"bench-drain-{os.getpid()}@{socket.gethostname()}"
    return [
        executable("celery"),
        "-A",
        "askpro",
        "worker",
        "--pool",
        "prefork",
        "--concurrency",
        str(WORKER_CONCURRENCY),
        "-n",
        node,
        "--without-mingle",
        "--without-gossip",
        "--loglevel",
        "WARNING",
    ]


def celery_beat_args() -> list[str]:
    schedule = LOG_DIR / "beat-schedule"
    return [
        executable("celery"),
        "-A",
        "askpro",
        "beat",
        "--loglevel",
        "WARNING",
        "-s",
        str(schedule),
    ]


def drain(env: dict[str, str], seed: dict[str, Any]) -> Row:
    """Start the worker and beat on the stored events; time until none is unfinished."""
    company = seed["company"]["id"]
    row = Row(
        "drain",
        "-",
        f"celery worker -c {WORKER_CONCURRENCY} + beat",
        "stored Stripe events processed by the worker (events/s: first to last processed)",
    )
    counts = status_counts(company)
    queued = sum(counts.get(status, 0) for status in UNFINISHED)
    inserted = max(0, DRAIN_EVENTS - queued)  # what ingestion stored, topped up
    if inserted:
        print(f"  drain: storing {inserted} more events ...", file=sys.stderr)
        endpoint = seed["webhook"]["path"].rstrip("/").rsplit("/", 1)[-1]
        args = [sys.executable, "-m", "bench.webhook", "insert", str(company), endpoint]
        run([*args, str(inserted)], env)
        queued += inserted
    print(f"  drain: {queued} events, worker + beat ...", file=sys.stderr, flush=True)
    started = time.monotonic()
    left = queued
    with (
        running("celery-drain", celery_worker_args(), env) as worker,
        running("celery-beat", celery_beat_args(), env),
    ):
        while left:
            if worker.poll() is not None:
                raise BenchError(f"the Celery worker exited:\n{log_tail('celery-drain')}")
            if time.monotonic() - started > DRAIN_TIMEOUT_S:
                row.note = f"timed out after {DRAIN_TIMEOUT_S} s with {left} events unfinished"
                break
            time.sleep(POLL_S)
            counts = status_counts(company)
            left = sum(counts.get(status, 0) for status in UNFINISHED)
    wall = time.monotonic() - started
    count, span, retried, most = processed_facts(company)
    row.measured = True
    row.requests, row.seconds = count, round(span, 3)
    row.requests_per_s = round(count / span, 1) if span else None
    row.ok_per_s = row.requests_per_s
    row.statuses = status_counts(company)
    row.details = {
        "events": queued,
        "inserted_by_drain": inserted,
        "processed": count,
        "first_to_last_processed_s": round(span, 3),
        "wall_s_from_worker_start": round(wall, 3),
        "attempts_over_1": retried,
        "max_attempts": most,
    }
    problems = []
    if retried:
        problems.append(f"{retried} event(s) took more than one attempt (max {most})")
    if count != queued:
        problems.append(f"{count} processed of {queued}")
    extra = "; ".join(problems) or f"all {count} processed, none with attempts > 1"
    row.note = f"{row.note}; {extra}" if row.note else extra
    row.note += f"; {wall:.1f} s from worker start (boot included)"
    return row


# --- run as the app role: store and queue events, as the view does ----------------------


def insert(company_id: int, endpoint_id: str, count: int) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "askpro.settings")
    import django

    django.setup()
    from django.utils import timezone

    from tenants.context import tenant_context
    from webhooks import inbox
    from webhooks.models import WebhookEvent

    received = timezone.now()
    events = [
        WebhookEvent(
            company_id=company_id,
            endpoint_id=endpoint_id,
            provider="stripe",
            event_type=EVENT_TYPE,
            dedup_key=f"evt_bench_drain_{n}",
            payload=payload(company_id, f"evt_bench_drain_{n}"),
            received_at=received,
        )
        for n in range(count)
    ]
    with tenant_context(company_id):
        stored = WebhookEvent.objects.bulk_create(events, batch_size=1000)
    if stored:
        inbox.request_drain()  # as the view does after its insert: one drain, if none waits


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] != "insert":
        sys.exit("usage: python -m bench.webhook insert <company id> <endpoint uuid> <count>")
    insert(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
