"""Each company's provider integrations: working, or broken with the provider's answer."""

from __future__ import annotations

from django.contrib import admin

from integrations.models import Integration
from tenants.admin_base import ReadOnlyTenantAdmin


@admin.register(Integration)
class IntegrationAdmin(ReadOnlyTenantAdmin):
    list_display = ["provider", "status", "last_error", "last_error_at", "last_ok_at"]
    list_filter = ["provider", "status"]
