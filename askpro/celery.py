"""The Celery app. Queues are declared, so a worker without -Q consumes all of them."""

from __future__ import annotations

import os

from celery import Celery, signals
from kombu import Exchange, Queue

from monitoring.workers import Heartbeat, TaskLogContext

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "askpro.settings")


# Every task starts with no tenant bound, eager or not (tenants.tasks).
def _sweep_seconds() -> int:
    from django.conf import settings

    return int(settings.WEBHOOK_SWEEP_SECONDS)


app = Celery("askpro", task_cls="tenants.tasks:UnscopedTask")
app.config_from_object("django.conf:settings", namespace="CELERY")

QUEUES = ("default", "webhooks", "integrations", "notifications", "maintenance")

app.conf.update(
    # Each queue its own exchange and routing key: left to defaults, every queue binds
    # to exchange "default" with key "default" and a task lands in all of them.
    task_queues=[Queue(name, Exchange(name), routing_key=name) for name in QUEUES],
    task_default_queue="default",
    task_serializer="json",
    accept_content=["json"],
    result_backend=None,
    task_ignore_result=True,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    # A publish must not block a web request for long when the broker is down.
    broker_connection_timeout=2,
    broker_connection_retry_on_startup=True,
    task_publish_retry=False,
    broker_transport_options={"socket_connect_timeout": 2, "socket_timeout": 5},
    worker_hijack_root_logger=False,
    task_routes={
        "bookings.*": {"queue": "maintenance"},
        "webhooks.process_event": {"queue": "webhooks"},
        "webhooks.drain": {"queue": "webhooks"},
        "webhooks.*": {"queue": "maintenance"},
        "integrations.outbox.sweep": {"queue": "maintenance"},
        "integrations.*": {"queue": "integrations"},
    },
    beat_schedule={
        "complete-past-appointments": {
            "task": "bookings.complete_past_appointments",
            "schedule": 15 * 60,
        },
        "sweep-webhooks": {"task": "webhooks.sweep", "schedule": _sweep_seconds()},
        "prune-webhooks": {"task": "webhooks.prune", "schedule": 60 * 60},
        "expire-call-data": {"task": "webhooks.expire_call_data", "schedule": 60 * 60},
        "reconcile-calendars": {"task": "integrations.calendar.reconcile", "schedule": 15 * 60},
        "sweep-outbox": {"task": "integrations.outbox.sweep", "schedule": 30},
        "send-reminders": {"task": "bookings.send_reminders", "schedule": 10 * 60},
        "prune-idempotency-records": {
            "task": "bookings.prune_idempotency_records",
            "schedule": 60 * 60,
        },
    },
)
app.autodiscover_tasks()

# Workers: django_structlog binds each task's id and the publisher's context (request id,
# company); the heartbeat tells /health and /metrics which workers are alive.
app.steps["worker"].add(TaskLogContext)
app.steps["worker"].add(Heartbeat)


@signals.setup_logging.connect
def _logging_as_configured(**_: object) -> None:
    """Workers log through the same pipeline as the web (LOG_LEVEL, LOG_FORMAT): with a
    receiver here Celery leaves logging alone, whatever its --loglevel says."""
    import logging.config

    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)
