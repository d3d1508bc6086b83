"""A company's connection to each provider: whether its credentials work, and why not."""

from __future__ import annotations

from django.db import models

from askpro.crypto import EncryptedTextField
from tenants.models import TenantModel


class Provider(models.TextChoices):
    CALCOM = "calcom", "Cal.com"
    RETELL = "retell", "Retell"
    STRIPE = "stripe", "Stripe"


class IntegrationStatus(models.TextChoices):
    OK = "ok", "Working"
    BROKEN = "broken", "Credentials rejected"


class Integration(TenantModel):
    """One row per company and provider: its credentials, and whether they work.

    `api_key` is encrypted at rest with FIELD_ENCRYPTION_KEYS (write-only in the admin;
    `rotate_keys` re-encrypts it). `account` is the Stripe connected account, when
    charges go to the company's own account. `remote` keeps what AskPro registered at the
    provider (webhook ids), so re-running a command updates instead of duplicating.

    A 401/403 from a provider means *this company's* credentials are wrong: the row is
    marked broken with the provider's answer (the shared breaker is not told — the
    provider is up). The next successful call marks it working again.
    """

    provider = models.CharField(max_length=16, choices=Provider.choices)
    api_key = EncryptedTextField(blank=True, default="")
    account = models.CharField(max_length=100, blank=True, help_text="Stripe: acct_… (Connect)")
    remote = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=16, choices=IntegrationStatus.choices, default=IntegrationStatus.OK
    )
    last_error = models.CharField(max_length=500, blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    last_ok_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "provider"], name="integration_per_provider"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_provider_display()}: {self.get_status_display()}"


class JobStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed (permanent)"


class OutboxJob(TenantModel):
    """Work for a provider that must happen eventually: written in the same transaction as
    the change that needs it, run by Celery, retried with backoff until done.

    `key` names the work (`calendar.cancel:42`), so asking twice queues it once.
    A permanent failure stops retrying and stays visible in the admin with its error.
    """

    key = models.CharField(max_length=200)
    kind = models.CharField(max_length=50)
    payload = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantModel.Meta):
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["company", "key"], name="outbox_unique_key"),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="outbox_due_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} ({self.get_status_display()})"
