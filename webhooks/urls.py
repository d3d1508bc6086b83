from __future__ import annotations

from django.urls import path, register_converter

from webhooks import views
from webhooks.tools import inbound as tool_inbound
from webhooks.tools import views as tool_views


class ProviderConverter:
    regex = "retell|calcom|stripe"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(ProviderConverter, "provider")

urlpatterns = [
    path("<provider:provider>/<uuid:endpoint_id>/", views.receive, name="webhook"),
    path("retell/<uuid:endpoint_id>/inbound/", tool_inbound.receive, name="retell-inbound"),
    path(
        "retell/<uuid:endpoint_id>/functions/<slug:name>/",
        tool_views.function,
        name="retell-function",
    ),
]
