from __future__ import annotations

from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Companies"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from tenants import checks  # noqa: F401  (registers the start-up checks)

        post_migrate.connect(_protect_tenant_tables, sender=self)


def _protect_tenant_tables(using: str, **kwargs: object) -> None:
    """After every migrate (as the owner): RLS, tenant-safe keys and the app's grants."""
    from django.db import connections

    from tenants.db.rls import protect_all
    from tenants.db.roles import app_role

    connection = connections[using]
    if app_role() and connection.settings_dict.get("USER") == app_role():
        return  # e.g. `flush` in tests: the app's role can't and needn't; migrate did it
    protect_all(connection, app_role())
