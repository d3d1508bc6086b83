"""Cache keys for tenant data always carry the tenant."""

from __future__ import annotations

from tenants.context import current_company_id


def tenant_key(*parts: object) -> str:
    """Return ``t<company>:<parts>`` for the bound company; raises ``TenantNotSet``."""
    return ":".join([f"t{current_company_id()}", *(str(part) for part in parts)])
