"""Resolve a webhook endpoint id before any tenant is known (the one narrow lookup).

An active endpoint, once resolved, is kept in the process for ``KEEP_S`` seconds: a
provider's burst then costs one lookup, not one per delivery. Saving or deleting an
endpoint forgets this process's copies at once; the other processes notice a
deactivated endpoint or a replaced secret within ``KEEP_S``.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from askpro.crypto import decrypt
from tenants.context import label_logs


@dataclass(frozen=True, slots=True)
class ResolvedEndpoint:
    id: uuid.UUID
    company_id: int
    provider: str
    secret: str


# PostgreSQL: a SECURITY DEFINER function returns this one row and nothing else
# (webhooks/migrations/0002). SQLite has no RLS, so the table is read directly.
_POSTGRES = "SELECT company_id, provider, secret, active FROM askpro_webhook_endpoint(%s)"
_SQLITE = "SELECT company_id, provider, secret, active FROM webhooks_webhookendpoint WHERE id = %s"


KEEP_S = 5.0
_KEEP_AT_MOST = 1024  # endpoints per process; past that, start over
_kept: dict[uuid.UUID, tuple[float, ResolvedEndpoint]] = {}


def resolve_endpoint(endpoint_id: uuid.UUID, provider: str) -> ResolvedEndpoint | None:
    """The active endpoint ``endpoint_id`` of ``provider``, or ``None`` (a 404)."""
    now = time.monotonic()
    kept = _kept.get(endpoint_id)
    if kept is not None and kept[0] > now:
        if kept[1].provider != provider:
            return None
        label_logs(kept[1].company_id)  # the endpoint names the tenant of this request
        return kept[1]
    found = _look_up(endpoint_id, provider)
    if found is not None:
        if len(_kept) >= _KEEP_AT_MOST:
            _kept.clear()
        _kept[endpoint_id] = (now + KEEP_S, found)
    return found


def forget_endpoints() -> None:
    """Drop every kept endpoint (an endpoint changed; tests start afresh)."""
    _kept.clear()


@receiver([post_save, post_delete], sender="webhooks.WebhookEndpoint")
def _endpoint_changed(**kwargs: Any) -> None:
    forget_endpoints()


def _look_up(endpoint_id: uuid.UUID, provider: str) -> ResolvedEndpoint | None:
    sql = _POSTGRES if connection.vendor == "postgresql" else _SQLITE
    key = str(endpoint_id) if connection.vendor == "postgresql" else endpoint_id.hex
    with connection.cursor() as cursor:
        cursor.execute(sql, [key])
        row = cursor.fetchone()
    if row is None:
        return None
    company_id, row_provider, secret, active = row
    if not active or row_provider != provider:
        return None
    label_logs(company_id)  # the endpoint names the tenant of this request
    return ResolvedEndpoint(
        id=endpoint_id, company_id=company_id, provider=provider, secret=decrypt(secret)
    )
