"""A company's provider credentials: read for the bound company, stored encrypted."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from integrations.models import Integration, IntegrationStatus


@dataclass(frozen=True, slots=True)
class Credentials:
    provider: str
    api_key: str
    account: str = ""
    remote: dict[str, Any] = field(default_factory=dict)


def credentials_for(provider: str) -> Credentials | None:
    """The bound company's credentials for `provider`, or None when it isn't connected."""
    # api_key is ciphertext in the database: test emptiness in Python, not in SQL.
    row = Integration.objects.filter(provider=provider).first()
    if row is None or not row.api_key:
        return None
    return Credentials(provider, row.api_key, row.account, dict(row.remote))


def connect(provider: str, api_key: str, *, account: str = "") -> Integration:
    """Store (or replace) the bound company's key; a new key starts out as working."""
    row, _ = Integration.objects.update_or_create(
        provider=provider,
        defaults={
            "api_key": api_key,
            "account": account,
            "status": IntegrationStatus.OK,
            "last_error": "",
        },
    )
    return row


def remember_remote(provider: str, **values: Any) -> None:
    """Keep ids of what we registered at the provider (merged into `remote`)."""
    row, _ = Integration.objects.get_or_create(provider=provider)
    row.remote = {**row.remote, **values}
    row.save(update_fields=["remote", "updated_at"])
