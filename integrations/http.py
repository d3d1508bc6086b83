"""The one outbound HTTP seam: every request AskPro sends to a provider passes here.

    response = seam().request("calcom", "create_booking", "POST", url, json=body,
                              deadline=Deadline.after(8))

`request()` is one call with retries (integrations.retry); `send()` is one attempt, for
the SDK adapters (integrations.sdk) whose own retries are off. Each attempt goes through
the provider's breaker, gets connect/read timeouts capped by the caller's deadline, never
follows a redirect, is logged without headers, bodies or query strings, and is measured.
Tests replace the outside world here, with `use_transport()`.
"""

from __future__ import annotations

import contextvars
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import structlog

from integrations import metrics, status
from integrations.breakers import get_breaker
from integrations.deadline import Deadline
from integrations.errors import CredentialsRejected, IntegrationError
from integrations.retry import attempt_number, with_retries

log = structlog.get_logger(__name__)

# What an SDK call is doing, set by integrations.sdk.call() for the adapters below it.
current_operation: contextvars.ContextVar[str] = contextvars.ContextVar(
    "askpro_integration_operation", default="sdk"
)
current_deadline: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar(
    "askpro_integration_deadline", default=None
)

DEFAULT_DEADLINE_SECONDS = 20.0
_PHONE = re.compile(r"(\+?\d{4})\d{3,}(\d{2})")


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float = 3.0
    read: float = 10.0
    write: float = 10.0
    pool: float = 2.0

    def within(self, deadline: Deadline) -> httpx.Timeout:
        return httpx.Timeout(
            connect=deadline.cap(self.connect),
            read=deadline.cap(self.read),
            write=deadline.cap(self.write),
            pool=deadline.cap(self.pool),
        )


def retry_after_seconds(value: str | None) -> float | None:
    """`Retry-After` as seconds: delta-seconds or an HTTP date; None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def error_for_status(provider: str, operation: str, response: httpx.Response) -> IntegrationError:
    """The `IntegrationError` a non-2xx answer means; 429, 408 and 5xx are retryable."""
    code = response.status_code
    message = f"HTTP {code} {response.reason_phrase}".strip()
    if code in (401, 403):
        return CredentialsRejected(
            provider, operation, "credentials", message, retryable=False, status=code
        )
    if _provider_failed(code):
        return IntegrationError(
            provider,
            operation,
            "rate_limited" if code == 429 else "server_error",
            message,
            retryable=True,
            status=code,
            retry_after=retry_after_seconds(response.headers.get("Retry-After")),
        )
    kind = "redirect" if 300 <= code < 400 else "rejected"
    return IntegrationError(provider, operation, kind, message, retryable=False, status=code)


def _outcome(code: int) -> str:
    if code < 300:
        return "ok"
    if code in (401, 403):
        return "credentials"
    if code == 429:
        return "rate_limited"
    if code >= 500 or code == 408:
        return "server_error"
    return "client_error"


def _provider_failed(code: int) -> bool:
    """Availability failures trip the breaker; a 4xx is the provider answering us."""
    return code >= 500 or code in (408, 429)


def redact_path(path: str) -> str:
    """Paths can carry phone numbers (Retell's phone-number endpoints): keep the ends."""
    return _PHONE.sub(lambda m: f"{m.group(1)}****{m.group(2)}", path)


class Seam:
    def __init__(self, transport: httpx.BaseTransport | None = None) -> None:
        self.timeouts = Timeouts()
        self._client = httpx.Client(
            transport=transport,
            follow_redirects=False,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
            trust_env=False,
        )

    def close(self) -> None:
        self._client.close()

    def send(
        self,
        provider: str,
        operation: str,
        request: httpx.Request,
        *,
        deadline: Deadline | None = None,
    ) -> httpx.Response:
        """One attempt. Transport failures raise `IntegrationError`; any status returns."""
        deadline = deadline or current_deadline.get() or Deadline.after(DEFAULT_DEADLINE_SECONDS)
        if deadline.expired:
            # Retryable: later, with a new deadline, it may well work (retries stop anyway).
            raise IntegrationError(
                provider, operation, "deadline", "deadline passed", retryable=True
            )
        permit = get_breaker(provider).acquire(operation)
        request.extensions["timeout"] = self.timeouts.within(deadline).as_dict()
        started = time.perf_counter()
        try:
            response = self._client.send(request, follow_redirects=False)
        except httpx.TimeoutException as exc:
            self._finish(permit, provider, operation, request, started, "timeout", None)
            raise IntegrationError(
                provider, operation, "timeout", type(exc).__name__, retryable=True
            ) from exc
        except httpx.TransportError as exc:
            self._finish(permit, provider, operation, request, started, "connect", None)
            raise IntegrationError(
                provider, operation, "connect", type(exc).__name__, retryable=True
            ) from exc
        code = response.status_code
        self._finish(permit, provider, operation, request, started, _outcome(code), code)
        if code in (401, 403):
            status.credentials_rejected(provider, code, _short_body(response))
        elif code < 300:
            status.credentials_accepted(provider)
        return response

    def _finish(
        self,
        permit: Any,
        provider: str,
        operation: str,
        request: httpx.Request,
        started: float,
        outcome: str,
        code: int | None,
    ) -> None:
        seconds = time.perf_counter() - started
        failed = code is None or _provider_failed(code)
        permit.record(permit.outcome_for(failed=failed, seconds=seconds))
        metrics.external_request_seconds.labels(provider, operation, outcome).observe(seconds)
        log_method = log.warning if failed else log.info
        log_method(
            "integration.request",
            provider=provider,
            operation=operation,
            method=request.method,
            host=request.url.host,
            path=redact_path(request.url.path),
            status=code,
            outcome=outcome,
            duration_ms=round(seconds * 1000, 1),
            attempt=attempt_number(),
            probe=permit.probe,
        )

    def request(
        self,
        provider: str,
        operation: str,
        method: str,
        url: str,
        *,
        deadline: Deadline,
        params: dict[str, Any] | None = None,
        json: Any = None,
        data: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        attempts: int = 3,
    ) -> httpx.Response:
        """One call: attempts with backoff until success, a permanent error or the deadline."""

        def attempt() -> httpx.Response:
            request = self._client.build_request(
                method, url, params=params, json=json, data=data, headers=headers
            )
            response = self.send(provider, operation, request, deadline=deadline)
            if response.status_code >= 300:
                response.read()
                raise error_for_status(provider, operation, response)
            return response

        return with_retries(
            attempt, provider=provider, operation=operation, deadline=deadline, attempts=attempts
        )


def _short_body(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase
    error = body.get("error", body) if isinstance(body, dict) else body
    if isinstance(error, dict):
        error = error.get("message") or error.get("code") or ""
    return str(error)[:200] or response.reason_phrase


_seam: Seam | None = None


def seam() -> Seam:
    """This process's seam (one pooled client for every provider)."""
    global _seam
    if _seam is None:
        _seam = Seam()
    return _seam


@contextmanager
def use_transport(transport: httpx.BaseTransport) -> Iterator[Seam]:
    """Tests: send through `transport` (e.g. `httpx.MockTransport`) instead of the network."""
    global _seam
    previous, _seam = _seam, Seam(transport)
    try:
        yield _seam
    finally:
        _seam.close()
        _seam = previous
