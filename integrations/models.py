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
