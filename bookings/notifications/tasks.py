"""The reminder job (beat, every 10 minutes; ``bookings.*`` runs on ``maintenance``)."""

from __future__ import annotations

from askpro.celery import app


@app.task(name="bookings.send_reminders", ignore_result=True)
def send_reminders() -> int:
    """Queue a reminder for each confirmed appointment in the next 24 hours, once."""
    from bookings.notifications.reminders import queue_due_reminders

    return queue_due_reminders()
