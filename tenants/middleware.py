"""Bind the tenant for session users (admin and pages).

API requests are bound by DRF (``tenants.api.TenantScopedMixin``) because token
authentication happens inside the view, after middleware ran.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone

from tenants.context import current_scope
from tenants.resolution import COMPANY_HEADER, SESSION_KEY, CompanyNotFound, resolve_company

# Paths that authenticate on their own (webhooks, tools) or need no tenant at all.
UNSCOPED_PREFIXES = ("/api/", "/webhooks/", "/health", "/metrics", "/static/")


class TenantMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith(UNSCOPED_PREFIXES) or not request.user.is_authenticated:
            return self.get_response(request)

        slug = request.META.get(COMPANY_HEADER) or request.session.get(SESSION_KEY)
        try:
            acting = resolve_company(request.user, slug, fallback_to_first=True)
        except CompanyNotFound:
            if slug and request.session.get(SESSION_KEY) == slug:
                # The membership went away since it was chosen: forget it, don't 404 forever.
                del request.session[SESSION_KEY]
                return self(request)
            if slug:
                raise Http404("No such company.") from None
            acting = None

        if acting is None:  # signed in but a member of nothing: sees no tenant data
            return self.get_response(request)
        request.company = acting.company  # type: ignore[attr-defined]
        request.company_role = acting.role  # type: ignore[attr-defined]
        zone = ZoneInfo(acting.company.timezone) if acting.company else None
        with acting.binding(), timezone.override(zone):  # admin times in the company's zone
            response = self.get_response(request)
            # Templates are rendered lazily; render while the tenant is still bound.
            if hasattr(response, "render") and not getattr(response, "is_rendered", True):
                response.render()
        return response


def company_context(request: HttpRequest) -> dict[str, Any]:
    """Template context: the company the page is for and the user's other companies."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    from tenants.models import Membership

    scope = current_scope()
    return {
        "acting_company": getattr(request, "company", None),
        "acting_all_companies": scope is not None and scope.is_bypass,
        "my_companies": [
            m.company
            for m in Membership.objects.filter(user=request.user).select_related("company")
        ],
    }
