"""The official Stripe package and retell-sdk, sending through our seam.

Both SDKs keep their own request building and typed responses; the bytes go through
`integrations.http.Seam.send` (breaker, timeouts, logging, metrics), their own retries are
off, and `call()` is the one retry layer around an SDK operation:

    session = sdk.call("stripe", "create_checkout", deadline,
                       lambda: stripe_client(key).v1.checkout.sessions.create(params))

Whatever an SDK raises comes out of `call()` as an `IntegrationError`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import httpx
import retell
import stripe
from django.conf import settings

from integrations.deadline import Deadline
from integrations.errors import CredentialsRejected, IntegrationError
from integrations.http import current_deadline, current_operation, retry_after_seconds, seam
from integrations.retry import with_retries

T = TypeVar("T")


class StripeSeamClient(stripe.HTTPClient):
    """A `stripe.HTTPClient` whose requests go through the seam."""

    name = "askpro-seam"

    # Bytes, as stripe's own httpx client returns, whatever its annotation says.
    def request(  # type: ignore[override]
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
        *,
        _usage: list[str] | None = None,
    ) -> tuple[bytes, int, Mapping[str, str]]:
        request = httpx.Request(method.upper(), url, headers=dict(headers or {}), content=post_data)
        response = seam().send("stripe", current_operation.get(), request)
        return response.content, response.status_code, response.headers

    def request_stream(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
        *,
        _usage: list[str] | None = None,
    ) -> tuple[Any, int, Mapping[str, str]]:
        content, code, response_headers = self.request(method, url, headers, post_data)
        return iter([content]), code, response_headers

    def close(self) -> None:
        """The seam's pool outlives any one SDK client."""


class RetellSeamTransport(httpx.BaseTransport):
    """An httpx transport for retell-sdk's client: each request is one seam attempt."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        response = seam().send("retell", current_operation.get(), request)
        # The seam already decoded the body: hand the SDK plain bytes.
        headers = [
            (k, v)
            for k, v in response.headers.multi_items()
            if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")
        ]
        return httpx.Response(
            response.status_code, headers=headers, content=response.content, request=request
        )


def stripe_client(api_key: str, *, account: str | None = None) -> stripe.StripeClient:
    return stripe.StripeClient(
        api_key,
        stripe_account=account,
        base_addresses={"api": settings.STRIPE_API_BASE},
        http_client=StripeSeamClient(),
        max_network_retries=0,
    )


def retell_client(api_key: str) -> retell.Retell:
    return retell.Retell(
        api_key=api_key,
        base_url=settings.RETELL_API_BASE,
        max_retries=0,
        http_client=httpx.Client(transport=RetellSeamTransport(), follow_redirects=False),
    )


def _translate(provider: str, operation: str, exc: Exception) -> IntegrationError:
    """An SDK's exception as our one error type."""
    if isinstance(exc, IntegrationError):
        return exc
    cause = exc.__cause__
    if isinstance(cause, IntegrationError):  # raised by the seam under the SDK
        return cause
    status: int | None = None
    headers: Mapping[str, str] = {}
    if isinstance(exc, stripe.StripeError):
        status, headers = exc.http_status, exc.headers or {}
    elif isinstance(exc, retell.APIStatusError):
        status, headers = exc.status_code, exc.response.headers
    message = str(getattr(exc, "user_message", None) or exc)[:200]
    if status is None:
        return IntegrationError(provider, operation, "sdk", message, retryable=False)
    if status in (401, 403):
        return CredentialsRejected(
            provider, operation, "credentials", message, retryable=False, status=status
        )
    retryable = status >= 500 or status in (408, 429)
    kind = "rate_limited" if status == 429 else "server_error" if retryable else "rejected"
    return IntegrationError(
        provider,
        operation,
        kind,
        message,
        retryable=retryable,
        status=status,
        retry_after=retry_after_seconds(headers.get("Retry-After")) if retryable else None,
    )


def call(
    provider: str, operation: str, deadline: Deadline, fn: Callable[[], T], *, attempts: int = 3
) -> T:
    """Run one SDK operation with our retries, deadline and error type."""

    def attempt() -> T:
        op_token = current_operation.set(operation)
        deadline_token = current_deadline.set(deadline)
        try:
            return fn()
        except Exception as exc:
            raise _translate(provider, operation, exc) from exc
        finally:
            current_operation.reset(op_token)
            current_deadline.reset(deadline_token)

    return with_retries(
        attempt, provider=provider, operation=operation, deadline=deadline, attempts=attempts
    )
