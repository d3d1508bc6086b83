"""gunicorn settings shared by `make bench` and the container image.

Every knob comes from a ``GUNICORN_*`` environment variable; a malformed value stops
start-up with a message naming the variable. Serve with
``gunicorn -c docker/gunicorn.conf.py askpro.wsgi:application``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

# Metrics: every worker writes its samples to files in one directory and a scrape of any
# worker sums them. It must be set before prometheus_client is imported (preload below),
# be this server's own, and start empty: a dead worker's old counters would count twice.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip():
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="askpro-metrics-")


def _cores() -> int:
    """CPUs this process may run on (respects affinity/cgroup cpusets, unlike cpu_count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _int(name: str, default: int, minimum: int = 0) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        problem = f"expected an integer, got {value!r}"
        raise SystemExit(f"Environment variable {name}: {problem}") from None
    if number < minimum:
        raise SystemExit(f"Environment variable {name}: must be at least {minimum}, got {number}")
    return number


def _choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = os.environ.get(name, "").strip().lower() or default
    if value not in choices:
        raise SystemExit(f"Environment variable {name}: expected one of {', '.join(choices)}")
    return value


bind = [os.environ.get("GUNICORN_BIND", "").strip() or "127.0.0.1:8000"]
workers = _int("GUNICORN_WORKERS", 2 * _cores() + 1, minimum=1)
# sync: one request per process, no keep-alive (put a proxy in front);
# gthread: GUNICORN_THREADS requests per process and keep-alive.
worker_class = _choice("GUNICORN_WORKER_CLASS", "sync", ("sync", "gthread"))
threads = _int("GUNICORN_THREADS", 4 if worker_class == "gthread" else 1, minimum=1)
keepalive = _int("GUNICORN_KEEPALIVE", 5)

# Recycle workers now and then (leaks), staggered so they don't all restart at once.
max_requests = _int("GUNICORN_MAX_REQUESTS", 5000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", max_requests // 10)
timeout = _int("GUNICORN_TIMEOUT", 30, minimum=1)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 20)

# Import Django once in the master; workers fork with the code already loaded.
# (No connections are opened at import time, so nothing is shared across the fork.)
preload_app = True

# The app logs requests itself; gunicorn's access log is opt-in ("-" = stdout).
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "").strip() or None
errorlog = "-"
loglevel = _choice("GUNICORN_LOG_LEVEL", "info", ("debug", "info", "warning", "error", "critical"))

# The heartbeat file lives in memory when possible (slow disks stall workers in Docker).
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")


def on_starting(server: Any) -> None:
    """In the master, before the app is loaded: empty the metrics directory."""
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    """Drop a gone worker's live gauges (its counters stay, and keep counting in sums)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def when_ready(server: Any) -> None:
    """In the master, before any fork: import every view too (Django loads the URLconf
    lazily, ~0.7 s), so each new worker -- at start and after ``max_requests`` -- serves
    its first request warm. Then close whatever import time opened, so no connection is
    shared across the fork."""
    from django.db import connections
    from django.urls import get_resolver

    patterns = get_resolver().url_patterns
    connections.close_all()
    server.log.info("preloaded %d URL patterns", len(patterns))
