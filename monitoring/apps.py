from __future__ import annotations

from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"

    def ready(self) -> None:
        from django.conf import settings

        from monitoring import middleware, slow_queries  # noqa: F401 - signal receivers

        if settings.OTEL_ENABLED:
            from monitoring import tracing

            tracing.configure()
