"""``Idempotency-Key`` for POSTs: same key and body → the stored answer; another body →
422; the first still running → 409 ``request_in_progress``.

The key is claimed by inserting a row (committed at once, outside the work's own
transaction), so a concurrent duplicate finds it; the answer is stored when the work
is done. A failure that leaves no answer (5xx, an exception) frees the key for a retry.
A claim nobody can free (the process killed, the database gone meanwhile) is taken
over by the same request after ``ABANDONED_AFTER``; one retry wins the takeover.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.db import DatabaseError
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response

from askpro.api_errors import APIError, error_response
from bookings.models import IdempotencyRecord

logger = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 200
ABANDONED_AFTER = timedelta(minutes=2)  # longer than any request may run
KEPT_FOR = timedelta(hours=24)

Handler = Callable[..., Response]

# For ``@extend_schema`` on every ``@idempotent`` action.
IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    HEADER,
    {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
    OpenApiParameter.HEADER,
    description="Any unique key: a retry with the same key and body gets the first answer.",
)
IDEMPOTENCY_RESPONSES = {
    409: error_response(
        "request_in_progress: the first request with this Idempotency-Key is still running."
    ),
    422: error_response(
        "idempotency_mismatch: this Idempotency-Key was used with a different request."
    ),
}


def _fingerprint(request: Request) -> str:
    body = json.dumps(request.data, sort_keys=True, default=str)
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


def _claim(request: Request, key: str, fingerprint: str) -> IdempotencyRecord | None:
    """Claim ``key``; return the earlier record if someone holds it, else ``None``."""
    record, created = IdempotencyRecord.objects.get_or_create(
        user_id=request.user.pk, key=key, defaults={"request_hash": fingerprint}
    )
    if created:
        return None
    # Only the same request may take over: another body under this key stays a 422.
    abandoned = (
        record.in_progress
        and record.request_hash == fingerprint
        and record.created_at < timezone.now() - ABANDONED_AFTER
    )
    # The conditional update is the contest: of two retries taking over at once, the
    # second waits for the first's row lock, then finds created_at changed (0 rows).
    if abandoned and IdempotencyRecord.objects.filter(
        pk=record.pk, in_progress=True, created_at=record.created_at
    ).update(request_hash=fingerprint, created_at=timezone.now()):
        return None
    return record


def _release(request: Request, key: str) -> None:
    """Free the key after a failure that left no answer, so that a retry runs again. If
    the database is what failed, the claim stays until ``ABANDONED_AFTER``; the
    original error is the one to report, not this one."""
    try:
        IdempotencyRecord.objects.filter(user_id=request.user.pk, key=key).delete()
    except DatabaseError as exc:
        logger.warning(
            "idempotency key not released (%s); free again after %s",
            type(exc).__name__,
            ABANDONED_AFTER,
        )


def _replay(record: IdempotencyRecord, fingerprint: str) -> Response:
    if record.request_hash != fingerprint:
        raise APIError(
            "idempotency_mismatch",
            "This Idempotency-Key was used with a different request.",
            status.HTTP_422_UNPROCESSABLE_ENTITY,
        )
    if record.in_progress:
        error = APIError(
            "request_in_progress",
            "A request with this Idempotency-Key is still being processed.",
            status.HTTP_409_CONFLICT,
        )
        error.retry_after = 1  # type: ignore[attr-defined]
        raise error
    return Response(
        record.response_body, status=record.status_code, headers={"Idempotent-Replayed": "true"}
    )


def idempotent(handler: Handler) -> Handler:
    """Decorate a viewset action to honour the ``Idempotency-Key`` header."""

    @functools.wraps(handler)
    def wrapper(view: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = request.headers.get(HEADER)
        if key is None:
            return handler(view, request, *args, **kwargs)
        if not key.strip() or len(key) > MAX_KEY_LENGTH or not key.isprintable():
            raise exceptions.ValidationError(
                {HEADER: [f"Use 1 to {MAX_KEY_LENGTH} printable characters."]}
            )
        fingerprint = _fingerprint(request)
        earlier = _claim(request, key, fingerprint)
        if earlier is not None:
            return _replay(earlier, fingerprint)
        try:
            try:
                response = handler(view, request, *args, **kwargs)
            except exceptions.APIException as exc:
                response = view.handle_exception(exc)
        except BaseException:
            # Also SystemExit and the like (a worker told to stop mid-request).
            _release(request, key)
            raise
        if response.status_code >= 500:
            _release(request, key)
        else:
            IdempotencyRecord.objects.filter(user_id=request.user.pk, key=key).update(
                in_progress=False, status_code=response.status_code, response_body=response.data
            )
        return response

    return wrapper


def prune_idempotency_records() -> int:
    """Delete answers older than a day (called periodically, across tenants)."""
    from tenants.context import all_tenants

    with all_tenants("periodic: prune idempotency records"):
        deleted, _ = IdempotencyRecord.objects.filter(
            created_at__lt=timezone.now() - KEPT_FOR
        ).delete()
    return deleted
