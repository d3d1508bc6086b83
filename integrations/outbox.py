"""The transactional outbox: provider work that must happen, even if not right now.

    outbox.enqueue("calendar.cancel", f"calendar.cancel:{appointment.pk}", {...})

is called inside the transaction that makes the change, so the job exists exactly when
the change does. After commit it is queued to Celery; the sweeper (beat, every 30 s)
queues whatever is due or was lost. A job is claimed with a conditional UPDATE (one
runner at a time, a lease for crashed workers), run by its kind's handler inside the
company's tenant, and then done, retried later with backoff (a retryable
`IntegrationError`, an open breaker: after its next probe), or failed for good (a
permanent error) — visible in the admin either way. Celery itself never retries: the row
is the state, as in the webhook inbox (docs/decisions/0004-webhook-inbox.md).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from integrations.errors import IntegrationError, ProviderUnavailable
from integrations.models import JobStatus, OutboxJob
from tenants.context import all_tenants, current_company_id

logger = logging.getLogger(__name__)

Handler = Callable[[OutboxJob], None]
_handlers: dict[str, Handler] = {}

LEASE = timedelta(minutes=5)
MAX_BACKOFF_SECONDS = 3600.0
SWEEP_BATCH = 500


class PermanentJobFailure(Exception):
    """The job can never succeed (its appointment is gone, the provider refused for good)."""


def handler(kind: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        _handlers[kind] = fn
        return fn

    return register


def enqueue(
    kind: str, key: str, payload: dict[str, Any] | None = None, *, delay: timedelta | None = None
) -> OutboxJob:
    """Record the job in the caller's transaction (once per key); queue it after commit.

    With `delay`, the job is a safety net: it runs then unless the caller finishes the
    work first (the handler finds nothing left to do); the sweeper picks it up.
    """
    due = timezone.now() + (delay or timedelta(0))
    job, created = OutboxJob.objects.get_or_create(
        key=key, defaults={"kind": kind, "payload": payload or {}, "next_attempt_at": due}
    )
    if not created and job.status == JobStatus.FAILED:
        # Asked again after a permanent failure: give it a fresh start.
        OutboxJob.objects.filter(pk=job.pk).update(
            status=JobStatus.PENDING, payload=payload or job.payload, next_attempt_at=timezone.now()
        )
    if delay is None:
        company_id = current_company_id()
        transaction.on_commit(lambda: _queue(company_id, job.pk), robust=True)
    return job


def complete(key: str) -> None:
    """The caller did the job's work itself: a pending job with this key is done."""
    OutboxJob.objects.filter(key=key, status=JobStatus.PENDING).update(
        status=JobStatus.DONE, next_attempt_at=None, done_at=timezone.now()
    )


def _queue(company_id: int, job_id: int) -> None:
    from integrations.tasks import run_outbox_job

    run_outbox_job.delay(company_id=company_id, job_id=job_id)


def backoff(attempts: int) -> timedelta:
    ceiling = min(MAX_BACKOFF_SECONDS, 5.0 * 2 ** max(attempts - 1, 0))
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))  # noqa: S311 - jitter


def claim(job_id: int) -> OutboxJob | None:
    now = timezone.now()
    due = Q(status=JobStatus.PENDING) & (
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    )
    orphaned = Q(status=JobStatus.RUNNING, lease_until__lt=now)
    taken = (
        OutboxJob.objects.filter(pk=job_id)
        .filter(due | orphaned)
        .update(status=JobStatus.RUNNING, lease_until=now + LEASE)
    )
    return OutboxJob.objects.get(pk=job_id) if taken else None


def run(job_id: int) -> str:
    """Run one job in the bound company; return the status it ends in ("skipped" if not due)."""
    job = claim(job_id)
    if job is None:
        return "skipped"
    attempts = job.attempts + 1
    fn = _handlers.get(job.kind)
    try:
        if fn is None:
            raise PermanentJobFailure(f"no handler for {job.kind!r}")
        fn(job)
    except ProviderUnavailable as exc:
        retry_at = exc.retry_at or timezone.now() + backoff(attempts)
        return _finish(job, JobStatus.PENDING, attempts, exc, retry_at)
    except IntegrationError as exc:
        status = JobStatus.PENDING if exc.retryable else JobStatus.FAILED
        return _finish(job, status, attempts, exc, timezone.now() + backoff(attempts))
    except PermanentJobFailure as exc:
        return _finish(job, JobStatus.FAILED, attempts, exc, None)
    except Exception as exc:  # our bug or the database: keep it, retry later, say so
        logger.exception("outbox job %s (%s) crashed", job.pk, job.kind)
        return _finish(job, JobStatus.PENDING, attempts, exc, timezone.now() + backoff(attempts))
    OutboxJob.objects.filter(pk=job.pk).update(
        status=JobStatus.DONE,
        attempts=attempts,
        lease_until=None,
        next_attempt_at=None,
        last_error="",
        done_at=timezone.now(),
    )
    return JobStatus.DONE


def _finish(job: OutboxJob, status: str, attempts: int, exc: BaseException, retry_at: Any) -> str:
    error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:500]
    OutboxJob.objects.filter(pk=job.pk).update(
        status=status,
        attempts=attempts,
        lease_until=None,
        next_attempt_at=retry_at if status == JobStatus.PENDING else None,
        last_error=error,
    )
    log = logger.error if status == JobStatus.FAILED else logger.warning
    log("outbox job %s (%s) attempt %s: %s", job.pk, job.kind, attempts, error)
    return status


def due_jobs() -> list[tuple[int, int]]:
    """(company_id, job_id) of jobs to queue: pending and due, or running on a dead lease."""
    now = timezone.now()
    due = Q(status=JobStatus.PENDING, next_attempt_at__lte=now) | Q(
        status=JobStatus.RUNNING, lease_until__lt=now
    )
    with all_tenants("outbox sweeper: find due jobs"):
        return list(
            OutboxJob.objects.filter(due)
            .order_by("next_attempt_at")
            .values_list("company_id", "pk")[:SWEEP_BATCH]
        )
