"""The webhook inbox: endpoints (one per company and provider) and received events."""

from __future__ import annotations

import uuid
from typing import ClassVar

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from askpro.crypto import EncryptedTextField
from tenants.models import TenantModel


class Provider(models.TextChoices):
    RETELL = "retell", "Retell"
    CALCOM = "calcom", "Cal.com"
    STRIPE = "stripe", "Stripe"


class WebhookEndpoint(TenantModel):
    """Where one provider posts one company's webhooks; the UUID in the URL names both
    the tenant and the secret before the body is read."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    provider = models.CharField(max_length=10, choices=Provider.choices)
    secret = EncryptedTextField(help_text=_("Signing secret (Retell: the API key); write-only."))
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta(TenantModel.Meta):
        ordering = ["provider"]
        constraints = [
            models.UniqueConstraint(
                fields=["company", "provider"], name="endpoint_one_per_provider"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} webhooks"

    @property
    def path(self) -> str:
        return f"/webhooks/{self.provider}/{self.pk}/"


class EventStatus(models.TextChoices):
    RECEIVED = "received", _("Received")
    PROCESSING = "processing", _("Processing")
    PROCESSED = "processed", _("Processed")
    IGNORED = "ignored", _("Ignored (no handler)")
    FAILED = "failed", _("Failed, will retry")
    DEAD = "dead", _("Dead")


class WebhookEvent(TenantModel):
    """One delivery, stored before it is acknowledged; unique per (endpoint, dedup key).

    Processed rows lose their payload after ``WEBHOOK_PAYLOAD_RETENTION`` but keep their
    key for ``WEBHOOK_DEDUP_RETENTION``, longer than any provider retries.
    """

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="events")
    provider = models.CharField(max_length=10, choices=Provider.choices)
    event_type = models.CharField(max_length=100)
    dedup_key = models.CharField(max_length=255)
    payload = models.JSONField(default=dict)
    status = models.CharField(
        max_length=12, choices=EventStatus.choices, default=EventStatus.RECEIVED
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    # The X-Request-ID of the delivery: bound on the worker's log lines for this event,
    # whichever drain batch, sweep or retry processes it.
    request_id = models.CharField(max_length=64, blank=True, default="")

    MAX_ATTEMPTS: ClassVar[int] = 8

    class Meta(TenantModel.Meta):
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["company", "endpoint", "dedup_key"], name="event_unique_delivery"
            ),
        ]
        indexes = [
            # The sweeper's question: what is due? Only unfinished rows are indexed.
            models.Index(
                fields=["status", "next_attempt_at"],
                name="event_due_idx",
                condition=Q(status__in=["received", "processing", "failed"]),
            ),
            models.Index(fields=["company", "provider", "status"], name="event_status_idx"),
            # The drain's question: the oldest received events (webhooks.processing.drain).
            models.Index(
                fields=["received_at", "id"],
                name="event_received_idx",
                condition=Q(status="received"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.event_type} ({self.status})"


class CallStage(models.IntegerChoices):
    STARTED = 1, _("Started")
    ENDED = 2, _("Ended")
    ANALYZED = 3, _("Analyzed")


class CallLog(TenantModel):
    """One phone call handled by the voice agent, merged from Retell's webhooks in
    whatever order they arrive."""

    call_id = models.CharField(max_length=100)
    branch = models.ForeignKey(
        "tenants.Branch", on_delete=models.SET_NULL, null=True, blank=True, related_name="calls"
    )
    customer = models.ForeignKey(
        "bookings.Customer", on_delete=models.SET_NULL, null=True, blank=True, related_name="calls"
    )
    appointment = models.ForeignKey(
        "bookings.Appointment",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="calls",
    )
    stage = models.PositiveSmallIntegerField(choices=CallStage.choices, default=CallStage.STARTED)
    direction = models.CharField(max_length=10, blank=True)
    from_number = models.CharField(max_length=20, blank=True)
    to_number = models.CharField(max_length=20, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    disconnection_reason = models.CharField(max_length=100, blank=True)
    transcript = models.TextField(blank=True)
    recording_url = models.URLField(max_length=500, blank=True)
    summary = models.TextField(blank=True)
    sentiment = models.CharField(max_length=20, blank=True)
    successful = models.BooleanField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["company", "call_id"], name="call_unique_id"),
        ]

    def __str__(self) -> str:
        return f"Call {self.call_id}"


class PaymentStatus(models.TextChoices):
    FAILED = "failed", _("Failed")
    SUCCEEDED = "succeeded", _("Succeeded")
    PARTIALLY_REFUNDED = "partially_refunded", _("Partially refunded")
    REFUNDED = "refunded", _("Refunded")


# Events arrive out of order; a payment's status only ever moves forward in this order.
PAYMENT_PROGRESS: list[str] = [
    PaymentStatus.FAILED,
    PaymentStatus.SUCCEEDED,
    PaymentStatus.PARTIALLY_REFUNDED,
    PaymentStatus.REFUNDED,
]


class Payment(TenantModel):
    """A deposit (Stripe PaymentIntent), linked to its appointment by metadata."""

    payment_intent_id = models.CharField(max_length=255)
    appointment = models.ForeignKey(
        "bookings.Appointment",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="payments",
    )
    checkout_session_id = models.CharField(max_length=255, blank=True)
    amount = models.PositiveIntegerField(help_text=_("In the currency's minor unit (cents)."))
    amount_refunded = models.PositiveIntegerField(default=0)
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=20, choices=PaymentStatus.choices)
    failure_message = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["company", "payment_intent_id"], name="payment_unique_intent"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.amount / 100:.2f} {self.currency.upper()} ({self.status})"
