"""The one retry layer: tenacity, for retryable `IntegrationError`s only, within a deadline.

Backoff is exponential with jitter (`initial * 2**n + uniform(0, jitter)`, capped); a
`Retry-After` from the provider is honoured when it asks for longer. No retry is started
whose wait would end past the caller's deadline: the last error is raised instead. SDK
retries are switched off (integrations.sdk), and Celery tasks don't retry an
`IntegrationError` the seam already retried — one layer, never several.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import TypeVar

import structlog
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt
from tenacity.stop import stop_base
from tenacity.wait import wait_exponential_jitter

from integrations import metrics
from integrations.deadline import Deadline
from integrations.errors import IntegrationError

log = structlog.get_logger(__name__)
T = TypeVar("T")

_attempt: contextvars.ContextVar[int] = contextvars.ContextVar("askpro_attempt", default=1)

INITIAL_WAIT = 0.2
MAX_WAIT = 5.0
MIN_ATTEMPT_SECONDS = 0.1


def attempt_number() -> int:
    return _attempt.get()


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, IntegrationError) and exc.retryable


class _Wait:
    def __init__(self, initial: float, maximum: float) -> None:
        self._backoff = wait_exponential_jitter(multiplier=initial, max=maximum, jitter=initial)

    def __call__(self, state: RetryCallState) -> float:
        wait = self._backoff(state)
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        return max(wait, retry_after or 0.0)


class _StopAtDeadline(stop_base):
    """Stop when the wait would leave less than a useful attempt before the deadline."""

    def __init__(self, deadline: Deadline) -> None:
        self.deadline = deadline

    def __call__(self, state: RetryCallState) -> bool:
        return (state.upcoming_sleep or 0.0) + MIN_ATTEMPT_SECONDS > self.deadline.remaining()


def with_retries(
    fn: Callable[[], T],
    *,
    provider: str,
    operation: str,
    deadline: Deadline,
    attempts: int = 3,
    initial_wait: float = INITIAL_WAIT,
    max_wait: float = MAX_WAIT,
) -> T:
    """Call `fn` until it succeeds, fails permanently, runs out of attempts or of time."""

    def before_sleep(state: RetryCallState) -> None:
        metrics.integration_retries.labels(provider, operation).inc()
        log.info(
            "integration.retry",
            provider=provider,
            operation=operation,
            attempt=state.attempt_number,
            wait_s=round(state.upcoming_sleep, 3),
            error=str(state.outcome.exception()) if state.outcome else "",
        )

    retrying = Retrying(
        retry=retry_if_exception(_retryable),
        stop=stop_after_attempt(attempts) | _StopAtDeadline(deadline),
        wait=_Wait(initial_wait, max_wait),
        before_sleep=before_sleep,
        reraise=True,
    )
    for attempt in retrying:
        with attempt:
            token = _attempt.set(attempt.retry_state.attempt_number)
            try:
                return fn()
            finally:
                _attempt.reset(token)
    raise AssertionError("unreachable: tenacity reraises the last error")  # pragma: no cover
