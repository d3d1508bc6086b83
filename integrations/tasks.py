"""Celery tasks of the outbox: run one job, sweep what is due."""

from __future__ import annotations

import logging

from askpro.celery import app
from integrations import outbox
from tenants.tasks import TenantTask

logger = logging.getLogger(__name__)


@app.task(
    base=TenantTask,
    name="integrations.outbox.run",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=60,
    time_limit=90,
    ignore_result=True,
)
def run_outbox_job(*, company_id: int, job_id: int) -> str:
    return outbox.run(job_id)


@app.task(name="integrations.outbox.sweep", ignore_result=True)
def sweep_outbox() -> int:
    """Queue every due job (beat, every 30 s)."""
    due = outbox.due_jobs()
    for company_id, job_id in due:
        run_outbox_job.delay(company_id=company_id, job_id=job_id)
    if due:
        logger.info("outbox sweeper queued %s job(s)", len(due))
    return len(due)
