"""``POST /webhooks/<provider>/<endpoint_id>/``: verify, de-duplicate, store, answer fast.

In the order they are decided: 404 unknown endpoint · 413 too large · 401 bad
signature · 400 not a JSON event object · 429 too many signed deliveries · 200
duplicate · 202 accepted (stored, a drain queued) · 503 could not store (the provider
retries). Nothing is stored unless the answer is 202.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from askpro.api_errors import error_body
from monitoring import metrics
from webhooks import door, inbox
from webhooks.dedup import NotAnEvent, event_identity
from webhooks.endpoints import resolve_endpoint
from webhooks.verifiers import VERIFIERS, SignatureRejected

logger = logging.getLogger(__name__)


def _error(status: int, code: str, message: str, **headers: str) -> JsonResponse:
    response = JsonResponse(error_body(code, message), status=status)
    for name, value in headers.items():
        response[name] = value
    return response


def _client_ip(request: HttpRequest) -> str:
    return str(request.META.get("REMOTE_ADDR", "unknown"))


# askpro_webhook_events_total's outcome at the door, by the answer's status.
_OUTCOMES = {202: "accepted", 200: "duplicate"}


@csrf_exempt
@require_POST
def receive(request: HttpRequest, provider: str, endpoint_id: uuid.UUID) -> JsonResponse:
    response = _receive(request, provider, endpoint_id)
    outcome = _OUTCOMES.get(response.status_code, "rejected")
    metrics.webhook_events.labels(provider, outcome).inc()
    return response


def _receive(request: HttpRequest, provider: str, endpoint_id: uuid.UUID) -> JsonResponse:
    try:
        endpoint = resolve_endpoint(endpoint_id, provider)
    except DatabaseError:
        logger.exception("webhook endpoint lookup failed")
        return _error(503, "unavailable", "Try again later.", **{"Retry-After": "30"})
    if endpoint is None:
        return _error(404, "not_found", "No such webhook endpoint.")

    declared = int(request.META.get("CONTENT_LENGTH") or 0)
    if declared > settings.WEBHOOK_MAX_BODY_BYTES:
        return _error(413, "payload_too_large", "The body is too large.")
    body = request.body
    if len(body) > settings.WEBHOOK_MAX_BODY_BYTES:
        return _error(413, "payload_too_large", "The body is too large.")
    try:
        VERIFIERS[provider](body, request.headers, endpoint.secret)
    except SignatureRejected as exc:
        logger.info("webhook signature rejected: %s", exc)
        return _error(401, "not_authenticated", "The signature doesn't verify.")

    payload = _json_object(body)
    if payload is None:
        return _error(400, "validation_error", "The body must be a JSON object.")
    try:
        event_type, dedup_key = event_identity(provider, payload, body)
    except NotAnEvent as exc:
        return _error(400, "validation_error", str(exc))

    identities = (f"endpoint:{endpoint.id}", f"ip:{_client_ip(request)}")
    verdict = door.check(identities, inbox.seen_key(endpoint, dedup_key))
    if verdict.wait is not None:
        return _error(
            429, "throttled", "Too many deliveries.", **{"Retry-After": str(verdict.wait)}
        )
    if verdict.seen:
        return JsonResponse({"status": "duplicate"}, status=200)
    try:
        stored = inbox.store_event(endpoint, event_type, dedup_key, payload)
    except DatabaseError:
        logger.exception("webhook could not be stored")
        return _error(503, "unavailable", "Try again later.", **{"Retry-After": "30"})
    if stored is None:
        return JsonResponse({"status": "duplicate"}, status=200)
    return JsonResponse({"status": "accepted"}, status=202)


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) else None
