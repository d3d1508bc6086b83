from __future__ import annotations

from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from monitoring import views as health
from tenants.api import MeView
from tenants.views import switch_company

api_v1: list[URLPattern | URLResolver] = [
    path("me/", MeView.as_view(), name="me"),
    path("", include("bookings.api.urls")),
]

urlpatterns = [
    path("admin/company/<slug:slug>/", switch_company, name="switch-company"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("webhooks/", include("webhooks.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("health/live", health.live, name="health-live"),
    path("health/ready", health.ready, name="health-ready"),
    path("health", health.report, name="health"),
    path("metrics", health.metrics, name="metrics"),
]

handler404 = "askpro.api_errors.handler404"
handler500 = "askpro.api_errors.handler500"
