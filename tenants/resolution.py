"""Which company a signed-in user acts for in this request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tenants.context import _ScopeBinding, all_tenants, label_logs, tenant_context
from tenants.models import Company, Membership, Role

COMPANY_HEADER = "HTTP_X_COMPANY"
SESSION_KEY = "askpro_company"


class CompanyNotFound(LookupError):
    """The user asked for a company they don't belong to (answered as a 404)."""


class CompanyAmbiguous(LookupError):
    """The user belongs to several companies and didn't say which."""


@dataclass(frozen=True, slots=True)
class Acting:
    """The company a request acts for (``None`` for a superuser seeing every company)."""

    company: Company | None
    role: str | None

    def binding(self) -> _ScopeBinding:
        if self.company is None:
            return all_tenants("superuser request")
        label_logs(self.company.pk)
        return tenant_context(self.company)


def resolve_company(user: Any, slug: str | None, *, fallback_to_first: bool = False) -> Acting:
    """Return what ``user`` acts for, given the slug they asked for (header or session)."""
    if user.is_superuser:
        if not slug:
            return Acting(company=None, role=None)
        company = Company.objects.filter(slug=slug, active=True).first()
        if company is None:
            raise CompanyNotFound(slug)
        return Acting(company=company, role=Role.OWNER)

    memberships = Membership.objects.filter(user=user, company__active=True).select_related(
        "company"
    )
    if slug:
        membership = memberships.filter(company__slug=slug).first()
        if membership is None:
            raise CompanyNotFound(slug)
        return _acting_as(user, membership)

    found = list(memberships.order_by("company__name", "company_id")[:2])
    if not found:
        raise CompanyNotFound("")
    if len(found) > 1 and not fallback_to_first:
        raise CompanyAmbiguous()
    return _acting_as(user, found[0])


def _acting_as(user: Any, membership: Membership) -> Acting:
    from tenants.permissions import remember_role

    remember_role(user, membership.company_id, membership.role)
    return Acting(company=membership.company, role=membership.role)
