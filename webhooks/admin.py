"""Admin for webhook endpoints (secrets write-only) and the inbox (dead letters, replay)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from tenants.admin_base import ReadOnlyTenantAdmin, TenantAdmin, WriteOnlySecretForm
from webhooks.models import CallLog, EventStatus, Payment, WebhookEndpoint, WebhookEvent
from webhooks.replay import replay_events


class EndpointForm(WriteOnlySecretForm):
    """The signing secret can be set or replaced, never read back."""


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(TenantAdmin):
    form = EndpointForm
    list_display = ["provider", "id", "active", "created_at"]
    list_filter = ["provider", "active"]
    readonly_fields = ["id", "path", "created_at"]
    fields = ["provider", "secret", "active", "id", "path", "created_at"]


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyTenantAdmin):
    list_display = ["received_at", "provider", "event_type", "status", "attempts", "last_error"]
    list_filter = ["status", "provider", "event_type"]
    search_fields = ["dedup_key", "event_type"]
    date_hierarchy = "received_at"
    readonly_fields = [
        "endpoint",
        "provider",
        "event_type",
        "dedup_key",
        "status",
        "attempts",
        "next_attempt_at",
        "lease_until",
        "last_error",
        "received_at",
        "processed_at",
        "payload",
    ]
    actions = ["replay"]

    @admin.action(description="Replay selected events", permissions=["view"])
    def replay(self, request: HttpRequest, queryset: QuerySet[WebhookEvent]) -> None:
        replayable = list(queryset.filter(status__in=[EventStatus.DEAD, EventStatus.FAILED]))
        outcomes = replay_events(replayable)
        done = sum(1 for status in outcomes.values() if status == EventStatus.PROCESSED)
        messages.info(request, f"Replayed {len(outcomes)} event(s); {done} processed.")


@admin.register(CallLog)
class CallLogAdmin(ReadOnlyTenantAdmin):
    list_display = ["started_at", "branch", "from_number", "stage", "sentiment", "appointment"]
    list_filter = ["stage", "branch", "sentiment", "successful"]
    search_fields = ["call_id", "from_number", "summary"]
    date_hierarchy = "started_at"
    list_select_related = ["branch", "appointment"]


@admin.register(Payment)
class PaymentAdmin(ReadOnlyTenantAdmin):
    list_display = ["created_at", "appointment", "amount", "currency", "status"]
    list_filter = ["status", "currency"]
    search_fields = ["payment_intent_id", "checkout_session_id"]
