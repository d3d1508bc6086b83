from __future__ import annotations

from django.urls import path, register_converter

from webhooks import views


class ProviderConverter:
    regex = "retell|calcom|stripe"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(ProviderConverter, "provider")

urlpatterns = [
    path("<provider:provider>/<uuid:endpoint_id>/", views.receive, name="webhook"),
]
