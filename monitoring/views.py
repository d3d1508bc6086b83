"""Health endpoints: live (process only), ready (dependencies), and the full report."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from askpro.api_errors import error_body
from monitoring import exposition, health


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
    components = health.report_components()
    status = health.overall(components)
    body = {"status": status, "components": {n: c.as_dict() for n, c in components.items()}}
    return JsonResponse(body, status=503 if status == "unhealthy" else 200)


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format; 403 unless the scraper is allowed (METRICS_* settings)."""
    if not exposition.allowed(request):
        return JsonResponse(error_body("permission_denied", "Not allowed."), status=403)
    return HttpResponse(exposition.render(), content_type=CONTENT_TYPE_LATEST)
