"""Worker heartbeats: each Celery worker notes in Redis that it is alive, every 15 s.

``/health`` and ``/metrics`` read the notes instead of asking the workers over the broker
(``celery inspect ping`` waits a second or more for replies; a Redis read takes < 1 ms).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import redis
from celery import bootsteps, signals
from django.conf import settings

logger = logging.getLogger(__name__)

KEY = "askpro:workers"
INTERVAL_SECONDS = 15.0
# Three missed beats before a worker counts as gone.
SEEN_WITHIN_SECONDS = 60.0


def _client() -> redis.Redis:
    return redis.Redis.from_url(
        str(settings.REDIS_URL), socket_connect_timeout=0.5, socket_timeout=0.5
    )


def beat(hostname: str) -> None:
    """Record that ``hostname`` is alive now (and forget workers silent for an hour)."""
    client = _client()
    try:
        now = time.time()
        pipe = client.pipeline()
        pipe.hset(KEY, hostname, f"{now:.3f}")
        pipe.expire(KEY, 3600)
        pipe.execute()
    finally:
        client.close()


def seen(within: float = SEEN_WITHIN_SECONDS) -> dict[str, float]:
    """Workers heard from in the last ``within`` seconds: hostname → seconds since."""
    client = _client()
    try:
        beats = client.hgetall(KEY)
    finally:
        client.close()
    now = time.time()
    ages = {_text(host): now - float(at) for host, at in beats.items()}
    return {host: age for host, age in ages.items() if age <= within}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class TaskLogContext(bootsteps.Step):
    """Bind each task's id and its publisher's context (request id, company, view) for
    the task's log lines. django_structlog's own step would connect its publish signals a
    second time (the app already did, DJANGO_STRUCTLOG_CELERY_ENABLED), doubling lines."""

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        from django_structlog.celery.receivers import CeleryReceiver

        receiver = CeleryReceiver()
        signals.task_prerun.connect(receiver.receiver_task_prerun, weak=False)
        signals.task_retry.connect(receiver.receiver_task_retry, weak=False)
        signals.task_success.connect(receiver.receiver_task_success, weak=False)
        signals.task_failure.connect(receiver.receiver_task_failure, weak=False)
        signals.task_revoked.connect(receiver.receiver_task_revoked, weak=False)
        signals.task_unknown.connect(receiver.receiver_task_unknown, weak=False)
        signals.task_rejected.connect(receiver.receiver_task_rejected, weak=False)


class Heartbeat(bootsteps.StartStopStep):
    """A worker bootstep: beat at start, then every ``INTERVAL_SECONDS`` on its timer."""

    requires = ("celery.worker.components:Timer",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.tref: Any = None

    def start(self, worker: Any) -> None:
        if not settings.REDIS_URL:
            return
        self._beat(worker)
        self.tref = worker.timer.call_repeatedly(INTERVAL_SECONDS, self._beat, (worker,))

    def stop(self, worker: Any) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None

    def _beat(self, worker: Any) -> None:
        try:
            beat(worker.hostname)
        except redis.RedisError as exc:
            logger.warning("worker heartbeat not recorded: %s", type(exc).__name__)


@signals.worker_init.connect
def _serve_metrics(**_: Any) -> None:
    """With ``CELERY_METRICS_PORT``, the worker's main process serves its pool's samples
    (the children write them to ``PROMETHEUS_MULTIPROC_DIR``, wiped here first)."""
    port = os.environ.get("CELERY_METRICS_PORT", "").strip()
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip()
    if not port:
        return
    from prometheus_client import start_http_server

    from monitoring.exposition import process_registry

    if directory:
        for stale in Path(directory).glob("*.db"):
            stale.unlink()
    start_http_server(int(port), registry=process_registry())
    logger.info("worker metrics on port %s", port)


@signals.worker_process_shutdown.connect
def _forget_process(**_: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())
