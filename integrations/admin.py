"""Each company's provider integrations: keys (write-only), and whether they work."""

from __future__ import annotations

from django.contrib import admin

from integrations.models import Integration, OutboxJob
from tenants.admin_base import ReadOnlyTenantAdmin, TenantAdmin, WriteOnlySecretForm


class IntegrationForm(WriteOnlySecretForm):
    write_only_field = "api_key"


@admin.register(Integration)
class IntegrationAdmin(TenantAdmin):
    form = IntegrationForm
    list_display = ["provider", "status", "last_error", "last_error_at", "last_ok_at"]
    list_filter = ["provider", "status"]
    fields = ["provider", "api_key", "account", "status", "last_error", "last_error_at"]
    readonly_fields = ["status", "last_error", "last_error_at"]


@admin.register(OutboxJob)
class OutboxJobAdmin(ReadOnlyTenantAdmin):
    """Provider work waiting, done or failed for good — with the last error."""

    list_display = ["created_at", "kind", "status", "attempts", "next_attempt_at", "last_error"]
    list_filter = ["status", "kind"]
    search_fields = ["key"]
    readonly_fields = [
        "key",
        "kind",
        "payload",
        "status",
        "attempts",
        "next_attempt_at",
        "lease_until",
        "last_error",
        "created_at",
        "done_at",
    ]
