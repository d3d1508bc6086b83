"""Demo data beyond the company itself; later apps add theirs here."""

from __future__ import annotations

from typing import Any

from tenants.models import Branch, Company


def seed_company_data(company: Company, branch: Branch) -> dict[str, Any]:
    """Create the demo's domain data inside the bound tenant; return what to print."""
    return {}
