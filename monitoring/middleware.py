"""Request context for logs: a request id (taken from ``X-Request-ID`` or made, and
echoed), the client address, the view's name, and the duration on django_structlog's
``request_finished``.

Sits before ``django_structlog.middlewares.RequestMiddleware``, which binds the id it
finds in the header; an upstream id that isn't a plain token is replaced, so a caller
can't write arbitrary text into our logs.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import structlog
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django_structlog import signals

_VALID_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
HEADER = "X-Request-ID"


class RequestContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request.META.get("HTTP_X_REQUEST_ID", "")
        if not _VALID_ID.fullmatch(request_id):
            request_id = uuid.uuid4().hex
        request.META["HTTP_X_REQUEST_ID"] = request_id
        structlog.contextvars.bind_contextvars(ip=request.META.get("REMOTE_ADDR"))
        request.request_id = request_id  # type: ignore[attr-defined]
        request.started_at = time.perf_counter()  # type: ignore[attr-defined]
        response = self.get_response(request)
        response[HEADER] = request_id
        return response

    def process_view(self, request: HttpRequest, view: Any, args: Any, kwargs: Any) -> None:
        match = request.resolver_match
        if match is not None:
            structlog.contextvars.bind_contextvars(view=match.view_name or match._func_path)


@receiver(signals.bind_extra_request_finished_metadata)
def _add_duration(sender: Any, request: HttpRequest, log_kwargs: dict[str, Any], **_: Any) -> None:
    started = getattr(request, "started_at", None)
    if started is not None:
        log_kwargs["duration_ms"] = round((time.perf_counter() - started) * 1000, 2)
