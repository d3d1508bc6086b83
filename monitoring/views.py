"""Health endpoints: live (process only), ready (dependencies), and the full report."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from monitoring import health


@never_cache
@require_GET
def live(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def ready(request: HttpRequest) -> JsonResponse:
    components = {
        "database": health.check_database(),
        "redis": health.check_redis(),
        "broker": health.check_broker(),
    }
    failed = sorted(name for name, c in components.items() if c.status == "down")
    body = {
        "status": "not_ready" if failed else "ready",
        "failed": failed,
        "components": {name: c.as_dict() for name, c in components.items()},
    }
    return JsonResponse(body, status=503 if failed else 200)


@never_cache
@require_GET
def report(request: HttpRequest) -> JsonResponse:
    components = {
        "database": health.check_database(),
        "redis": health.check_redis(),
        "broker": health.check_broker(),
        "breakers": health.check_breakers(),
    }
    status = health.overall(components)
    body = {"status": status, "components": {n: c.as_dict() for n, c in components.items()}}
    return JsonResponse(body, status=503 if status == "unhealthy" else 200)
