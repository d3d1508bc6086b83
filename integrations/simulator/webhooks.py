"""Signed webhook delivery from one background worker thread, best effort.

Stripe deliveries get one retry after a short pause; Cal.com's none (as in reality).
Every attempt is recorded in ``deliveries``; failures are logged, never raised.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx

from .common import Target
from .signing import sign_calcom, sign_retell, sign_stripe

logger = logging.getLogger(__name__)

STRIPE_RETRY_DELAY_S = 0.5


@dataclass(frozen=True)
class Job:
    target: Target
    event_type: str
    event_id: str | None
    body: bytes


def encode(provider: str, payload: dict[str, Any]) -> bytes:
    """The exact bytes sent (Stripe pretty-prints, the others are compact)."""
    if provider == "stripe":
        return json.dumps(payload, indent=2).encode()
    return json.dumps(payload, separators=(",", ":")).encode()


def signed_headers(provider: str, body: bytes, secret: str) -> dict[str, str]:
    headers = {"Content-Type": "application/json; charset=utf-8"}
    if provider == "stripe":
        headers["Stripe-Signature"] = sign_stripe(body, secret)
        headers["User-Agent"] = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
    elif provider == "calcom":
        headers["X-Cal-Signature-256"] = (
            sign_calcom(body, secret) if secret else "no-secret-provided"
        )
    else:
        headers["X-Retell-Signature"] = sign_retell(body, secret)
    return headers


class Dispatcher:
    """Queue of deliveries and the thread that sends them."""

    def __init__(self, timeout_s: float = 5.0) -> None:
        self.timeout_s = timeout_s
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._lock = threading.Lock()
        self._deliveries: list[dict[str, Any]] = []
        self._silenced: dict[str, int] = {}
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sim-webhooks", daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout_s)
            self._thread = None

    def drain(self, timeout_s: float = 10.0) -> bool:
        """Wait until every queued delivery has been attempted."""
        deadline = time.monotonic() + timeout_s
        while self._queue.unfinished_tasks:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    # -- API -------------------------------------------------------------------------
    def silence(self, provider: str, on: bool) -> None:
        with self._lock:
            self._silenced[provider] = self._silenced.get(provider, 0) + (1 if on else -1)

    def emit(
        self, provider: str, event_type: str, payload: dict[str, Any], targets: list[Target]
    ) -> None:
        """Queue one event for each target (dropped, and recorded, while silenced)."""
        body = encode(provider, payload)
        event_id = payload.get("id") if isinstance(payload.get("id"), str) else None
        with self._lock:
            silenced = self._silenced.get(provider, 0) > 0
        for target in targets:
            job = Job(target, event_type, event_id, body)
            if silenced:
                self._record(job, 0, None, "silenced")
            else:
                self._queue.put(job)

    @property
    def deliveries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(d) for d in self._deliveries]

    def clear(self) -> None:
        with self._lock:
            self._deliveries.clear()

    # -- worker ----------------------------------------------------------------------
    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout_s, trust_env=False) as client:
            while True:
                job = self._queue.get()
                try:
                    if job is None:
                        return
                    attempts = 2 if job.target.provider == "stripe" else 1
                    for attempt in range(1, attempts + 1):
                        if self._send(client, job, attempt):
                            break
                        if attempt < attempts:
                            time.sleep(STRIPE_RETRY_DELAY_S)
                except Exception:  # never let the worker die
                    logger.exception("webhook worker error")
                finally:
                    self._queue.task_done()

    def _send(self, client: httpx.Client, job: Job, attempt: int) -> bool:
        target = job.target
        headers = signed_headers(target.provider, job.body, target.secret)
        try:
            response = client.post(target.url, content=job.body, headers=headers)
        except httpx.HTTPError as exc:
            logger.warning("webhook to %s failed: %r", target.url, exc)
            self._record(job, attempt, None, repr(exc))
            return False
        ok = 200 <= response.status_code < 300
        if not ok:
            logger.warning("webhook to %s answered %s", target.url, response.status_code)
        self._record(job, attempt, response.status_code, None)
        return ok

    def _record(self, job: Job, attempt: int, status: int | None, error: str | None) -> None:
        with self._lock:
            self._deliveries.append(
                {
                    "at": time.time(),
                    "provider": job.target.provider,
                    "url": job.target.url,
                    "event_type": job.event_type,
                    "event_id": job.event_id,
                    "attempt": attempt,
                    "status": status,
                    "error": error,
                }
            )
