"""Switching the company a multi-company user works on in the admin."""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404, HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from tenants.models import Membership
from tenants.resolution import SESSION_KEY


@require_POST
@staff_member_required
def switch_company(request: HttpRequest, slug: str) -> HttpResponseRedirect:
    allowed = (
        request.user.is_superuser
        or Membership.objects.filter(
            user__username=request.user.get_username(), company__slug=slug, company__active=True
        ).exists()
    )
    if not allowed:
        raise Http404("No such company.")
    request.session[SESSION_KEY] = slug
    return HttpResponseRedirect(reverse("admin:index"))
