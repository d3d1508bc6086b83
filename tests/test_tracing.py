"""OpenTelemetry: off by default (nothing instrumented); on, requests, queries and task
publishing are traced, the context travels in the task's headers, and log lines carry
the trace id. Instrumentation patches libraries for the life of a process, so the "on"
case runs in a child process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, logging, sys
import django
django.setup()
import structlog
from celery import signals
from django.test import Client
from opentelemetry import trace

from askpro.celery import app
from monitoring import tracing
from webhooks.tasks import sweep_webhooks

assert tracing.is_configured()
headers_seen = []


def remember(headers=None, **_):
    headers_seen.append(dict(headers))


signals.before_task_publish.connect(remember, weak=False)

response = Client().get("/health/ready", HTTP_HOST="localhost", HTTP_X_REQUEST_ID="trace-test")
with trace.get_tracer("test").start_as_current_span("publisher") as span:
    structlog.get_logger("askpro.test").warning("inside the span")
    app.conf.task_always_eager = False
    sweep_webhooks.apply_async()
    publisher = format(span.get_span_context().trace_id, "032x")
trace.get_tracer_provider().force_flush()
print("RESULT " + json.dumps({
    "status": response.status_code,
    "publisher_trace": publisher,
    "traceparent": [h.get("traceparent") for h in headers_seen],
}), flush=True)
"""


def spans_in(text: str) -> list[dict[str, Any]]:
    """The console exporter prints indented JSON objects back to back."""
    decoder = json.JSONDecoder()
    spans, position = [], 0
    while (start := text.find("{", position)) != -1:
        try:
            obj, position = decoder.raw_decode(text, start)
        except ValueError:
            position = start + 1
            continue
        if isinstance(obj, dict) and "context" in obj:
            spans.append(obj)
    return spans


def test_nothing_is_instrumented_when_tracing_is_off() -> None:
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor

    from monitoring import tracing

    assert not tracing.is_configured()
    assert not DjangoInstrumentor().is_instrumented_by_opentelemetry
    assert not PsycopgInstrumentor().is_instrumented_by_opentelemetry


@pytest.mark.django_db
def test_with_tracing_on_requests_queries_and_tasks_share_a_trace() -> None:
    database = connection.settings_dict["NAME"]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO"))},
        "DJANGO_SETTINGS_MODULE": "askpro.settings_test",
        "DATABASE_URL": f"postgres://askpro_app@127.0.0.1:5432/{database}",
        "OTEL_ENABLED": "true",
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_SERVICE_NAME": "askpro-test",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "warning",
        "ALLOWED_HOSTS": "localhost",
    }
    child = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", CHILD],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    result_line = next(line for line in child.stdout.splitlines() if line.startswith("RESULT "))
    result = json.loads(result_line.removeprefix("RESULT "))
    spans = spans_in(child.stdout)

    assert result["status"] == 200
    request = next(s for s in spans if s["name"].startswith("GET") and "health" in s["name"])
    assert request["resource"]["attributes"]["service.name"] == "askpro-test"
    request_trace = request["context"]["trace_id"]
    queries = [s for s in spans if s["context"]["trace_id"] == request_trace and s is not request]
    assert any(s["attributes"].get("db.system") == "postgresql" for s in queries)
    assert any(
        s["attributes"].get("db.redis.database_index") is not None
        or s["attributes"].get("db.system") == "redis"
        for s in queries
    )

    # Publishing a task puts the publisher's trace in the message headers.
    publisher = result["publisher_trace"]
    assert len(result["traceparent"]) == 1
    assert result["traceparent"][0].split("-")[1] == publisher
    assert any(
        s["name"].startswith("apply_async") and s["context"]["trace_id"] == "0x" + publisher
        for s in spans
    )

    logged = [json.loads(line) for line in child.stderr.splitlines() if line.startswith("{")]
    inside = next(line for line in logged if line["event"] == "inside the span")
    assert inside["trace_id"] == publisher
