"""OpenTelemetry, when ``OTEL_ENABLED=true``: Django, Celery, psycopg, Redis and httpx.

Nothing is imported or instrumented when it is off. The exporter follows the standard
variables: ``OTEL_TRACES_EXPORTER`` (``otlp`` default, ``console``, ``none``),
``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_SERVICE_NAME``. Celery's instrumentation puts the
trace context in each message's headers, so a task's spans join the request's trace.
"""

from __future__ import annotations

import os
import sys
import threading

_lock = threading.Lock()
_configured = False


def _exporter() -> object | None:
    kind = os.environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower()
    if kind == "none":
        return None
    if kind == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter(out=sys.stdout)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def configure(default_service: str = "askpro") -> None:
    """Install the tracer provider and instrument the libraries, once per process."""
    global _configured
    with _lock:
        if _configured:
            return
        from opentelemetry import trace
        from opentelemetry.instrumentation.celery import CeleryInstrumentor
        from opentelemetry.instrumentation.django import DjangoInstrumentor
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
        from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
        from opentelemetry.instrumentation.redis import RedisInstrumentor
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

        service = os.environ.get("OTEL_SERVICE_NAME") or default_service
        provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
        exporter = _exporter()
        if isinstance(exporter, SpanExporter):
            # The processor re-creates its export thread after a fork (gunicorn, Celery).
            provider.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(provider)

        DjangoInstrumentor().instrument(is_sql_commentor_enabled=False)
        CeleryInstrumentor().instrument()
        PsycopgInstrumentor().instrument(enable_commenter=False)
        RedisInstrumentor().instrument()
        HTTPXClientInstrumentor().instrument()
        _configured = True


def is_configured() -> bool:
    return _configured
