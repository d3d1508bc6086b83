"""Periodic booking jobs."""

from __future__ import annotations

from askpro.celery import app
from bookings.services import complete_past_appointments


@app.task(name="bookings.complete_past_appointments")
def complete_past_appointments_task() -> int:
    """Mark appointments that ended over an hour ago as completed (runs every 15 min)."""
    return complete_past_appointments()


@app.task(name="bookings.prune_idempotency_records")
def prune_idempotency_records_task() -> int:
    """Forget API idempotency answers older than a day (runs hourly)."""
    from bookings.api.idempotency import prune_idempotency_records

    return prune_idempotency_records()
