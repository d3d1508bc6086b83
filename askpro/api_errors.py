"""The API's one error boundary: every failure becomes ``{"error": {...}}``.

Codes are part of the contract (DESIGN.md, HTTP surface). Unexpected exceptions are
logged with an id that the response carries; the response never carries a traceback.
A database that can't be reached is not a bug of ours: 503 ``unavailable`` with
``Retry-After``, logged once as a warning.
"""

from __future__ import annotations

import logging
import sys
import uuid
from typing import Any, TypeGuard, TypeVar

import psycopg
import sentry_sdk
from django.core.exceptions import PermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import exceptions, serializers, status
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


# --- the database out of reach ---------------------------------------------------------

# Seconds a client should wait when the database is out of reach; the webhooks' 503
# (webhooks/views.py) asks providers for the same.
UNAVAILABLE_RETRY_AFTER = 30
# Besides class 08 (connection exceptions): admin shutdown, crash shutdown, cannot
# connect now (starting up or in recovery).
_UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})


def database_unreachable(exc: BaseException | None) -> TypeGuard[BaseException]:
    """Whether ``exc`` says the database can't be reached (the connection failed or was
    dropped), as opposed to a statement it refused (timeouts, deadlocks, constraints)."""
    if isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    cause = exc.__cause__
    if not isinstance(cause, psycopg.Error):
        return False
    # libpq's own failures (refused, reset, timed out) carry no SQLSTATE at all.
    state = cause.sqlstate
    return state is None or state.startswith("08") or state in _UNAVAILABLE_SQLSTATES


def unavailable_body(exc: BaseException) -> dict[str, Any]:
    """Log the outage once, as a warning (the class and SQLSTATE, never the message,
    which names hosts and roles), and return the ``unavailable`` body."""
    cause = exc.__cause__
    logger.warning(
        "database unreachable; answering 503",
        extra={
            "error": type(cause or exc).__name__,
            "sqlstate": getattr(cause, "sqlstate", None),
        },
    )
    return error_body("unavailable", "The service is briefly unavailable. Try again later.")


_Response = TypeVar("_Response", bound=HttpResponse)


def _logged(response: _Response) -> _Response:
    """Tell django.request that the answer has been logged (as the warning above):
    otherwise it logs every 5xx again, as an error."""
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF exception handler: map everything, including the unexpected, to the contract."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("Not found.")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    if not isinstance(exc, exceptions.APIException):
        set_rollback()
        if database_unreachable(exc):
            response = Response(
                unavailable_body(exc),
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
                headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER)},
            )
            return _logged(response)
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
    """Log the failure under a fresh id (and tag the Sentry event with it, if any) and
    return the body that carries the id: support finds the log line from the answer."""
    error_id = uuid.uuid4().hex
    sentry_sdk.set_tag("error_id", error_id)
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
    exc = sys.exc_info()[1]
    if database_unreachable(exc):
        # Outside DRF (a session user's middleware, the admin): still a 503, not a bug.
        body = unavailable_body(exc)
        response: HttpResponse
        if _wants_json(request):
            response = JsonResponse(body, status=503)
        else:
            response = HttpResponse(
                body["error"]["message"], status=503, content_type="text/plain; charset=utf-8"
            )
        response["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER)
        return _logged(response)
    if _wants_json(request):
        return JsonResponse(internal_error_body(exc), status=500)
    from django.views.defaults import server_error

    return server_error(request)


# --- the error body in the OpenAPI schema -------------------------------------------------


# The one error body, as a schema component ("Error"; drf-spectacular names it after the
# serializer). ``inline_serializer`` because a field named ``fields`` can't be declared on
# a Serializer class without shadowing ``Serializer.fields``.
ErrorSerializer = inline_serializer(
    "Error",
    {
        "error": inline_serializer(
            "ErrorDetail",
            {
                "code": serializers.CharField(
                    help_text="Stable machine-readable code, e.g. validation_error, "
                    "not_found, slot_taken."
                ),
                "message": serializers.CharField(help_text="A human-readable explanation."),
                "fields": serializers.DictField(
                    required=False,
                    help_text="Per-field messages (validation_error only); nested objects "
                    "for nested fields.",
                ),
                "id": serializers.CharField(
                    required=False,
                    help_text="Error id to quote to support (internal errors only).",
                ),
            },
        )
    },
)


def error_response(description: str) -> OpenApiResponse:
    """An error answer for ``@extend_schema(responses=...)`` (e.g. 409 on a booking)."""
    return OpenApiResponse(ErrorSerializer, description=description)


RETRY_AFTER_HEADER = {
    "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}
}


class ErrorResponsesSchema(AutoSchema):
    """drf-spectacular schema that documents, on every operation, the errors any API
    request can get (bad input, authentication, permission, not found, throttling, ...),
    each with the error body above. Operation-specific errors (409, 422) are declared on
    the views with ``error_response``; those declarations win."""

    common_errors: dict[int, str] = {
        400: "validation_error: invalid parameters or body.",
        401: "not_authenticated: missing or invalid credentials.",
        403: "permission_denied: the role in this company doesn't allow it.",
        404: "not_found: no such object, or no such company in X-Company.",
        406: "not_acceptable: the Accept header asks for something other than JSON.",
        503: "unavailable: the database can't be reached; retry after Retry-After.",
    }
    body_errors: dict[int, str] = {
        415: "validation_error: the body's Content-Type isn't supported.",
    }
    throttled = "throttled: too many requests; see Retry-After."

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        errors = dict(self.common_errors)
        if self.method in ("POST", "PUT", "PATCH"):
            errors.update(self.body_errors)
        if getattr(self.view, "throttle_classes", None):
            errors[429] = self.throttled
        for code, description in errors.items():
            if str(code) not in responses:
                responses[str(code)] = self._error_body(description, code)
        return responses

    def _error_body(self, description: str, code: int) -> dict[str, Any]:
        # Built here rather than through _get_response_for_code: on list views that would
        # wrap the error in a paginated array.
        ref = self.resolve_serializer(ErrorSerializer, "response").ref
        response: dict[str, Any] = {
            "description": description,
            "content": {"application/json": {"schema": ref}},
        }
        if code in (status.HTTP_429_TOO_MANY_REQUESTS, status.HTTP_503_SERVICE_UNAVAILABLE):
            response["headers"] = RETRY_AFTER_HEADER
        return response
