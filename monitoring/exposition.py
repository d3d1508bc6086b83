"""What ``/metrics`` serves: every process's counters plus the shared-state gauges.

Under gunicorn (and in Celery workers) ``PROMETHEUS_MULTIPROC_DIR`` is set and each
process writes its samples to files there; one scrape of any worker sums them
(``MultiProcessCollector``). Without it (tests, ``runserver``) the process's own
registry is the whole truth.
"""

from __future__ import annotations

import ipaddress
import os
import secrets

from django.conf import settings
from django.http import HttpRequest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess

from monitoring.scrape import SharedStateCollector

_shared = CollectorRegistry(auto_describe=False)
_shared.register(SharedStateCollector())


def process_registry() -> CollectorRegistry:
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def render(*, shared_state: bool = True) -> bytes:
    body = generate_latest(process_registry())
    if shared_state:
        body += generate_latest(_shared)
    return body


def allowed(request: HttpRequest) -> bool:
    """From an allowed network, and with the bearer token when one is configured."""
    try:
        address = ipaddress.ip_address(str(request.META.get("REMOTE_ADDR", "")))
    except ValueError:
        return False
    if not any(address in network for network in settings.METRICS_ALLOWED_NETWORKS):
        return False
    token = settings.METRICS_TOKEN
    if not token:
        return True
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    return secrets.compare_digest(given.encode(), token.encode())
