"""Keep `Integration.status` in step with what providers answer a company's credentials."""

from __future__ import annotations

import time

from django.db.models import Q
from django.utils import timezone

from integrations.models import Integration, IntegrationStatus
from tenants.context import current_scope

# (company, provider) → when this process last confirmed the row isn't broken. Saves an
# UPDATE per successful call; a row marked broken elsewhere is cleared within the TTL.
_confirmed_ok: dict[tuple[int, str], float] = {}
CONFIRM_TTL_SECONDS = 60.0


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
    _confirmed_ok.pop((company_id, provider), None)
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
    """A broken integration that works again is marked working (at most one UPDATE a minute)."""
    company_id = _company_id()
    if company_id is None:
        return
    key, now = (company_id, provider), time.monotonic()
    if now - _confirmed_ok.get(key, -CONFIRM_TTL_SECONDS) < CONFIRM_TTL_SECONDS:
        return
    _confirmed_ok[key] = now
    Integration.objects.filter(Q(provider=provider) & ~Q(status=IntegrationStatus.OK)).update(
        status=IntegrationStatus.OK, last_ok_at=timezone.now()
    )
