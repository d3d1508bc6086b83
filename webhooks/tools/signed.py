"""A Retell request to a synchronous endpoint (tools, inbound): the endpoint resolved and
the signature checked exactly as for Retell webhooks (``webhooks.views``).

404 unknown endpoint · 413 too large · 401 bad or stale signature; nothing is stored.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse

from askpro.api_errors import error_body
from webhooks.endpoints import ResolvedEndpoint, resolve_endpoint
from webhooks.verifiers import SignatureRejected, verify_retell

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SignedRequest:
    endpoint: ResolvedEndpoint
    payload: dict[str, Any] | None  # None: not a JSON object


class Refused(Exception):
    """The request is answered with ``response`` before any handler runs."""

    def __init__(self, response: JsonResponse) -> None:
        super().__init__(response.status_code)
        self.response = response


def _refuse(status: int, code: str, message: str) -> Refused:
    return Refused(JsonResponse(error_body(code, message), status=status))


def read_signed(request: HttpRequest, endpoint_id: uuid.UUID) -> SignedRequest:
    """Resolve and verify, or raise ``Refused``; a database error propagates."""
    endpoint = resolve_endpoint(endpoint_id, "retell")
    if endpoint is None:
        raise _refuse(404, "not_found", "No such webhook endpoint.")
    if int(request.META.get("CONTENT_LENGTH") or 0) > settings.WEBHOOK_MAX_BODY_BYTES:
        raise _refuse(413, "payload_too_large", "The body is too large.")
    body = request.body
    if len(body) > settings.WEBHOOK_MAX_BODY_BYTES:
        raise _refuse(413, "payload_too_large", "The body is too large.")
    try:
        verify_retell(body, request.headers, endpoint.secret)
    except SignatureRejected as exc:
        logger.info("retell request signature rejected: %s", exc)
        raise _refuse(401, "not_authenticated", "The signature doesn't verify.") from None
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        payload = None
    return SignedRequest(endpoint, payload if isinstance(payload, dict) else None)
