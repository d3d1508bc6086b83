"""The API's one error boundary: every failure becomes ``{"error": {...}}``.

Codes are part of the contract (DESIGN.md, HTTP surface). Unexpected exceptions are
logged with an id that the response carries; the response never carries a traceback.
"""

from __future__ import annotations

import logging
import sys
import uuid
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

logger = logging.getLogger("askpro.errors")

_CODES: dict[type[exceptions.APIException], str] = {
    exceptions.ValidationError: "validation_error",
    exceptions.ParseError: "validation_error",
    exceptions.UnsupportedMediaType: "validation_error",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "not_authenticated",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.Throttled: "throttled",
}


class APIError(exceptions.APIException):
    """An API failure with an explicit contract code (e.g. ``slot_taken``)."""

    def __init__(self, code: str, message: str, status_code: int, fields: Any = None) -> None:
        super().__init__(detail=message, code=code)
        self.status_code = status_code
        self.error_code = code
        self.fields = fields


def error_body(code: str, message: str, fields: Any = None, **extra: Any) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    error.update(extra)
    return {"error": error}


def _code_of(exc: exceptions.APIException) -> str:
    if isinstance(exc, APIError):
        return exc.error_code
    for klass in type(exc).__mro__:
        if klass in _CODES:
            return _CODES[klass]
    return "error"


def _message_and_fields(exc: exceptions.APIException) -> tuple[str, Any]:
    if isinstance(exc, APIError):
        return str(exc.detail), exc.fields
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail
        if isinstance(detail, dict):
            return "The request has invalid fields.", detail
        if isinstance(detail, list):
            return " ".join(str(item) for item in detail) or "Invalid request.", None
    return str(exc.detail), None


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF exception handler: map everything, including the unexpected, to the contract."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("Not found.")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    if not isinstance(exc, exceptions.APIException):
        set_rollback()
        return Response(internal_error_body(exc), status=status.HTTP_500_INTERNAL_SERVER_ERROR)

    message, fields = _message_and_fields(exc)
    headers: dict[str, str] = {}
    wait = getattr(exc, "wait", None) or getattr(exc, "retry_after", None)
    if wait is not None:
        headers["Retry-After"] = str(max(1, int(wait)))
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]
    set_rollback()
    return Response(
        error_body(_code_of(exc), message, fields), status=exc.status_code, headers=headers
    )


def internal_error_body(exc: BaseException | None) -> dict[str, Any]:
    error_id = uuid.uuid4().hex
    logger.error("unhandled error", exc_info=exc, extra={"error_id": error_id})
    return error_body("internal", "Something went wrong on our side.", id=error_id)


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith(("/api/", "/webhooks/", "/health"))


def handler404(request: HttpRequest, exception: Exception | None = None) -> Any:
    if _wants_json(request):
        return JsonResponse(error_body("not_found", "Not found."), status=404)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def handler500(request: HttpRequest) -> Any:
    if _wants_json(request):
        return JsonResponse(internal_error_body(sys.exc_info()[1]), status=500)
    from django.views.defaults import server_error

    return server_error(request)
