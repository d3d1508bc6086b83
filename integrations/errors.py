"""The one error type of the integrations layer.

Whatever goes wrong when AskPro talks to a provider — a timeout, a refused connection, a
5xx, a 429, a 400, an open breaker, or an SDK's own exception — callers see an
`IntegrationError`. `retryable` says whether trying again later can help; the retry layer
(`integrations.retry`) looks at nothing else.
"""

from __future__ import annotations

from datetime import UTC, datetime


class IntegrationError(Exception):
    """A provider call failed.

    `kind` is a short machine name: `timeout`, `connect`, `server_error`, `rate_limited`,
    `credentials`, `rejected` (any other 4xx), `redirect`, `unavailable`, `deadline`.
    """

    def __init__(
        self,
        provider: str,
        operation: str,
        kind: str,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{provider} {operation}: {message}")
        self.provider = provider
        self.operation = operation
        self.kind = kind
        self.message = message
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after

    @property
    def permanent(self) -> bool:
        return not self.retryable


class ProviderUnavailable(IntegrationError):
    """The provider's breaker is open: rejected at once, nothing was sent.

    `retry_at` is when the breaker will admit its next probe (None while forced open).
    Not retryable within the caller's deadline: the breaker already knows the answer.
    """

    def __init__(self, provider: str, operation: str, retry_at: datetime | None) -> None:
        when = retry_at.isoformat() if retry_at else "when an operator closes it"
        super().__init__(
            provider,
            operation,
            "unavailable",
            f"breaker open; next probe {when}",
            retryable=False,
        )
        self.retry_at = retry_at

    @classmethod
    def at_ms(cls, provider: str, operation: str, retry_at_ms: int) -> ProviderUnavailable:
        retry_at = datetime.fromtimestamp(retry_at_ms / 1000, UTC) if retry_at_ms else None
        return cls(provider, operation, retry_at)


class CredentialsRejected(IntegrationError):
    """401/403: this company's credentials are wrong. Permanent; the breaker isn't told."""
