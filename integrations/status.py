"""Keep `Integration.status` in step with what providers answer a company's credentials."""

from __future__ import annotations

from django.db.models import Q
from django.utils import timezone

from integrations.models import Integration, IntegrationStatus
from tenants.context import current_scope


def _company_id() -> int | None:
    scope = current_scope()
    if scope is None or scope.is_bypass:
        return None
    return scope.company_id


def credentials_rejected(provider: str, status: int, message: str) -> None:
    """Mark the bound company's integration broken; no tenant bound → nothing to mark."""
    company_id = _company_id()
    if company_id is None:
        return
    Integration.objects.update_or_create(
        company_id=company_id,
        provider=provider,
        defaults={
            "status": IntegrationStatus.BROKEN,
            "last_error": f"HTTP {status}: {message}"[:500],
            "last_error_at": timezone.now(),
        },
    )


def credentials_accepted(provider: str) -> None:
    """A broken integration that works again is marked working (one UPDATE, usually 0 rows)."""
    if _company_id() is None:
        return
    Integration.objects.filter(Q(provider=provider) & ~Q(status=IntegrationStatus.OK)).update(
        status=IntegrationStatus.OK, last_ok_at=timezone.now()
    )
