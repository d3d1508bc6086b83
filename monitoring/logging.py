"""Logging: one structlog pipeline for our code, Django, Celery and every library.

Each line is one JSON object on stdout (``LOG_FORMAT=console`` for people), carrying the
context bound for the unit of work: ``request_id``, ``user_id``, ``view`` (web),
``task_id`` (workers), ``company_id`` (whenever a tenant is bound) and ``trace_id`` /
``span_id`` while tracing is on. The last processor before rendering is the redaction.
"""

from __future__ import annotations

import logging
from typing import Any

import structlog

from monitoring.redaction import redact_event


def add_trace_ids(logger: Any, method_name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Put the current OpenTelemetry trace and span ids on the line (tracing on only)."""
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict.setdefault("trace_id", format(context.trace_id, "032x"))
        event_dict.setdefault("span_id", format(context.span_id, "016x"))
    return event_dict


class DropEvents(logging.Filter):
    """Drop structlog lines by event name (a logger-level filter in ``LOGGING``)."""

    def __init__(self, events: list[str]) -> None:
        super().__init__()
        self.events = frozenset(events)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.msg
        return not (isinstance(message, dict) and message.get("event") in self.events)


def _shared_processors(tracing: bool) -> list[Any]:
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if tracing:
        processors.append(add_trace_ids)
    return processors


def build_logging_config(level: str, fmt: str, *, tracing: bool = False) -> dict[str, Any]:
    """Return a ``LOGGING`` dict routing every logger through structlog's formatter."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(tracing),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structlog": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,
                    redact_event,
                    renderer,
                ],
                # Standard-library records: their `extra={...}` fields become keys too.
                "foreign_pre_chain": [
                    *_shared_processors(tracing),
                    structlog.stdlib.ExtraAdder(),
                ],
            },
        },
        "filters": {
            # django_structlog notes every publish; the task's own lines carry the
            # publisher's request id and parent task id, so this line is only cost
            # (a third of the logging on the webhook path).
            "no_task_enqueued": {"()": DropEvents, "events": ["task_enqueued"]},
        },
        "handlers": {
            "stdout": {"class": "logging.StreamHandler", "formatter": "structlog"},
        },
        "root": {"handlers": ["stdout"], "level": level},
        "loggers": {
            "django.db.backends": {"level": "INFO", "propagate": True},
            # django.request repeats every 4xx/5xx that django_structlog already logs
            # with its request id; keep only its errors.
            "django.request": {"level": "ERROR", "propagate": True},
            "django_structlog.celery.receivers": {"filters": ["no_task_enqueued"]},
            # Their INFO lines carry whole URLs (phone numbers in Retell's paths): the
            # seam logs every request itself, redacted.
            "httpx": {"level": "WARNING", "propagate": True},
            "httpcore": {"level": "WARNING", "propagate": True},
        },
    }
