"""Management commands that act for one company (``--company SLUG``)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants.context import TenantNotSet, tenant_context
from tenants.models import Company
from tenants.phones import InvalidPhone, normalize_phone

_F = TypeVar("_F", bound=Callable[..., Any])


def add_company_argument(parser: CommandParser, required: bool = True) -> None:
    parser.add_argument(
        "--company", metavar="SLUG", required=required, help="slug of the company to act for"
    )


def add_phone_argument(parser: CommandParser) -> None:
    parser.add_argument(
        "--phone",
        required=True,
        help="the number in any notation the company's country reads (E.164 is safest)",
    )


def phone_option(options: dict[str, Any], company: Company) -> str:
    """``--phone`` in E.164 for ``company``'s country, or a ``CommandError`` saying why."""
    try:
        return normalize_phone(str(options["phone"]), company.country)
    except InvalidPhone as exc:
        raise CommandError(f"--phone: {exc}") from None


def for_company(handle: _F) -> _F:
    """Decorate ``handle``: bind the tenant named by ``--company`` and pass ``company``.

    Without ``--company`` the command fails like any tenant query would, with
    ``TenantNotSet``; an unknown slug is a ``CommandError``.
    """

    @functools.wraps(handle)
    def wrapper(self: BaseCommand, *args: Any, **options: Any) -> Any:
        slug = options.get("company")
        if not slug:
            raise TenantNotSet(f"{type(self).__module__} needs --company SLUG")
        company = Company.objects.filter(slug=slug).first()
        if company is None:
            raise CommandError(f"No company with slug {slug!r}.")
        options["company"] = company
        with tenant_context(company):
            return handle(self, *args, **options)

    return wrapper  # type: ignore[return-value]
