"""Each company's provider integrations: keys (write-only), and whether they work."""

from __future__ import annotations

from django.contrib import admin

from integrations.models import Integration
from tenants.admin_base import TenantAdmin, WriteOnlySecretForm


class IntegrationForm(WriteOnlySecretForm):
    write_only_field = "api_key"


@admin.register(Integration)
class IntegrationAdmin(TenantAdmin):
    form = IntegrationForm
    list_display = ["provider", "status", "last_error", "last_error_at", "last_ok_at"]
    list_filter = ["provider", "status"]
    fields = ["provider", "api_key", "account", "status", "last_error", "last_error_at"]
    readonly_fields = ["status", "last_error", "last_error_at"]
