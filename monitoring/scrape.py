"""Gauges of shared state, read when ``/metrics`` is scraped rather than kept per process.

Every web process would otherwise report its own idea of the inbox backlog or a
breaker's state; reading the shared source at scrape time gives one true value.
A source that can't be read is skipped (and logged), never a failed scrape.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from django.db.models import Count, Min, Q
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from integrations.metrics import STATE_VALUES

logger = logging.getLogger(__name__)

UNFINISHED = ("received", "processing", "failed")


def inbox_families() -> Iterable[GaugeMetricFamily]:
    from tenants.context import all_tenants
    from webhooks.models import WebhookEvent

    backlog = GaugeMetricFamily(
        "askpro_webhook_backlog",
        "Stored webhook events not finished (received, processing, failed) or dead.",
        labels=["status"],
    )
    oldest = GaugeMetricFamily(
        "askpro_webhook_oldest_unprocessed_seconds",
        "Age of the oldest event still received, processing or failed (0 when none).",
    )
    with all_tenants("metrics: inbox backlog"):
        counts = dict(
            WebhookEvent.objects.filter(status__in=[*UNFINISHED, "dead"])
            .order_by()
            .values_list("status")
            .annotate(n=Count("id"))
        )
        first = WebhookEvent.objects.filter(status__in=UNFINISHED).aggregate(
            at=Min("received_at", filter=Q(status__in=UNFINISHED))
        )["at"]
    for status in (*UNFINISHED, "dead"):
        backlog.add_metric([status], counts.get(status, 0))
    oldest.add_metric([], (timezone.now() - first).total_seconds() if first else 0.0)
    return (backlog, oldest)


def breaker_families() -> Iterable[GaugeMetricFamily]:
    from integrations.breakers import NAMES, get_breaker

    state = GaugeMetricFamily(
        "askpro_breaker_state",
        "Circuit breaker state in the shared store: 0 closed, 1 half-open, 2 open.",
        labels=["breaker"],
    )
    for name in NAMES:
        state.add_metric([name], STATE_VALUES.get(get_breaker(name).snapshot().effective, 0))
    return (state,)


def queue_families() -> Iterable[GaugeMetricFamily]:
    from django.conf import settings

    from askpro.celery import QUEUES, app

    if settings.CELERY_TASK_ALWAYS_EAGER:
        return ()
    length = GaugeMetricFamily(
        "askpro_celery_queue_length", "Messages waiting in each Celery queue.", labels=["queue"]
    )
    with app.connection_for_read() as conn:
        conn.ensure_connection(max_retries=1, timeout=1)
        channel: Any = conn.default_channel
        for queue in QUEUES:
            length.add_metric(
                [queue], channel.queue_declare(queue=queue, passive=True).message_count
            )
    return (length,)


def worker_families() -> Iterable[GaugeMetricFamily]:
    from django.conf import settings

    from monitoring import workers

    if not settings.REDIS_URL:
        return ()
    seen = GaugeMetricFamily(
        "askpro_celery_workers_seen",
        f"Celery workers that sent a heartbeat in the last {workers.SEEN_WITHIN_SECONDS:.0f} s.",
    )
    seen.add_metric([], len(workers.seen()))
    return (seen,)


SOURCES: dict[str, Callable[[], Iterable[GaugeMetricFamily]]] = {
    "inbox": inbox_families,
    "breakers": breaker_families,
    "queues": queue_families,
    "workers": worker_families,
}


class SharedStateCollector(Collector):
    """The scrape-time gauges, plus ``askpro_scrape_source_up{source}`` for each source."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily(
            "askpro_scrape_source_up",
            "1 when the shared state behind a group of gauges could be read at this scrape.",
            labels=["source"],
        )
        for source, read in SOURCES.items():
            try:
                families = list(read())
            except Exception as exc:  # one unreadable source must not fail the scrape
                logger.warning("metrics source %s unreadable: %s", source, type(exc).__name__)
                up.add_metric([source], 0)
                continue
            up.add_metric([source], 1)
            yield from families
        yield up
