"""Resolve a webhook endpoint id before any tenant is known (the one narrow lookup)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db import connection

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


def resolve_endpoint(endpoint_id: uuid.UUID, provider: str) -> ResolvedEndpoint | None:
    """The active endpoint ``endpoint_id`` of ``provider``, or ``None`` (a 404)."""
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
