"""Observability as it runs: gunicorn workers, a Celery worker and Redis as processes."""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import Client, override_settings

from integrations.breakers import reset_stores
from tests import signing
from tests.conftest import World
from tests.live.harness import LiveStack, PrivateRedis, wait_until
from tests.live.test_inbox_live import post, statuses, stripe_delivery, stripe_endpoint

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="live stack")


def json_lines(path: Path) -> list[dict[str, Any]]:
    lines = []
    for raw in path.read_text(errors="replace").splitlines():
        if raw.startswith("{"):
            lines.append(json.loads(raw))
    return lines


def scrape(stack: LiveStack) -> str:
    with urllib.request.urlopen(f"{stack.base_url}/metrics", timeout=10) as response:  # noqa: S310
        return str(response.read().decode())


def value(text: str, series: str) -> float:
    found = re.search(rf"^{re.escape(series)} (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


@pytest.mark.django_db(transaction=True)
def test_a_request_id_follows_the_webhook_into_the_worker_with_the_company(
    live: LiveStack, world: World
) -> None:
    live.extra_env["LOG_LEVEL"] = "info"
    endpoint = stripe_endpoint(world)
    live.start_web()
    live.start_worker(concurrency=1)
    # A deposit for one of company A's appointments that no longer exists: the task
    # queues a refund job, whose lines must name the task as their parent.
    payload = signing.fixture("stripe/payment_intent.succeeded")
    payload["id"] = "evt_live_orphan_deposit"
    payload["data"]["object"]["metadata"] = {"company_id": str(world.a.pk), "appointment_id": "0"}
    body = json.dumps(payload).encode()
    headers = {"Stripe-Signature": signing.stripe_header(body, endpoint.secret)}
    assert post(live, endpoint.path, body, {**headers, "X-Request-ID": "call-7f3a"}) == 202
    wait_until(lambda: statuses(endpoint_id=endpoint.pk) == {"processed": 1}, 90, "processing")

    def web_line() -> dict[str, Any] | None:
        for line in json_lines(live.logs / "gunicorn.log"):
            if line.get("event") == "request_finished" and line.get("request_id") == "call-7f3a":
                return line
        return None

    def task_lines() -> list[dict[str, Any]]:
        return [
            line
            for line in json_lines(live.logs / "worker0.log")
            if line.get("request_id") == "call-7f3a"
        ]

    wait_until(lambda: web_line() is not None, 10, "the access line")
    wait_until(lambda: any(e["event"] == "task_succeeded" for e in task_lines()), 30, "task log")
    wait_until(lambda: any(e.get("parent_task_id") for e in task_lines()), 30, "the child's log")
    access = web_line()
    assert access is not None
    assert (access["company_id"], access["view"], access["code"]) == (world.a.pk, "webhook", 202)
    in_task = task_lines()
    started = {line["task"]: line["task_id"] for line in in_task if line["event"] == "task_started"}
    assert "webhooks.drain" in started
    # The drain is every company's: its lines about our event name company A (another
    # company's event in the same batch has its own company and no request id of ours).
    about_the_event = [line for line in in_task if line.get("webhook_event_id")]
    assert about_the_event
    assert all(line["company_id"] == world.a.pk for line in about_the_event)
    # The web's line says nothing of the hand-over (that line is dropped as cost); the
    # task's lines carry its request id, and what the task queued names it as parent.
    assert not [
        line
        for line in json_lines(live.logs / "gunicorn.log")
        if line.get("event") == "task_enqueued"
    ]
    children = {line["task_id"] for line in in_task if line.get("parent_task_id")}
    assert children
    assert all(
        line["parent_task_id"] == started["webhooks.drain"]
        for line in in_task
        if line["task_id"] in children
    )


def worker_pids(master: int) -> set[int]:
    out = subprocess.run(  # noqa: S603 - fixed argv
        ["pgrep", "-P", str(master)],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return {int(pid) for pid in out.split()}


@pytest.mark.django_db(transaction=True)
def test_metrics_are_summed_across_gunicorn_workers(live: LiveStack, world: World) -> None:
    directory = tempfile.mkdtemp(prefix="askpro-metrics-test-")
    live.extra_env["PROMETHEUS_MULTIPROC_DIR"] = directory
    live.extra_env["GUNICORN_WORKERS"] = "2"
    endpoint = stripe_endpoint(world)
    live.start_web()
    assert live.web is not None
    deliveries = [stripe_delivery(endpoint.secret, n) for n in range(24)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(lambda d: post(live, endpoint.path, d[0], d[1]), deliveries))
    assert codes == [202] * 24
    # Both workers answered some of them: each wrote its own sample files.
    pids = worker_pids(live.web.pid)
    assert len(pids) == 2
    written = {
        int(m.group(1))
        for f in Path(directory).iterdir()
        if (m := re.search(r"_(\d+)\.db$", f.name))
    }
    assert pids <= written
    accepted = 'askpro_webhook_events_total{outcome="accepted",provider="stripe"}'
    requests = (
        "django_http_responses_total_by_status_view_method_total"
        '{method="POST",status="202",view="webhook"}'
    )
    # Whichever worker answers the scrape, it reports the sum of both.
    for _ in range(6):
        text = scrape(live)
        assert value(text, accepted) == 24
        assert value(text, requests) == 24


def test_ready_follows_redis_down_and_back(private_redis: PrivateRedis, db: Any) -> None:
    with override_settings(REDIS_URL=private_redis.url):
        reset_stores()
        assert Client().get("/health/ready").status_code == 200
        private_redis.stop()
        try:
            down = Client().get("/health/ready")
            report = Client().get("/health")
        finally:
            private_redis.start()
        back = Client().get("/health/ready")
        reset_stores()
    assert down.status_code == 503
    assert down.json()["failed"] == ["redis"]
    assert down.json()["components"]["redis"]["status"] == "down"
    assert report.status_code == 200
    assert report.json()["status"] == "degraded"
    assert report.json()["components"]["redis"]["status"] == "down"
    assert back.status_code == 200
    assert back.json()["status"] == "ready"
