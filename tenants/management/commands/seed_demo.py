"""Create (once) and print a demo company; every run prints the same credentials."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from rest_framework.authtoken.models import Token

from tenants.context import tenant_context
from tenants.models import Branch, Company, Membership, Role


def demo_password(slug: str) -> str:
    """A password derived from SECRET_KEY, so each run prints (and sets) the same one."""
    digest = hmac.new(settings.SECRET_KEY.encode(), f"demo:{slug}".encode(), hashlib.sha256)
    return f"{slug}-{digest.hexdigest()[:16]}"


class Command(BaseCommand):
    help = "Create the demo company (idempotent) and print its credentials."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--company", default="demo", metavar="SLUG")
        parser.add_argument("--json", action="store_true", help="print JSON only")

    def handle(self, *args: Any, **options: Any) -> None:
        slug: str = options["company"]
        with transaction.atomic():
            company, _ = Company.objects.get_or_create(
                slug=slug,
                defaults={
                    "name": f"{slug.replace('-', ' ').title()} Salon",
                    "timezone": "Europe/Berlin",
                    "country": "DE",
                },
            )
            with tenant_context(company):
                result = self._seed(company)
        if options["json"]:
            self.stdout.write(json.dumps(result, indent=2))
            return
        self.stdout.write(f"Company   {company.name} ({company.slug})")
        self.stdout.write(
            f"Admin     {result['admin']['username']} / {result['admin']['password']}"
        )
        self.stdout.write(f"API token {result['api_token']}")

    def _seed(self, company: Company) -> dict[str, Any]:
        from tenants.demo import seed_company_data

        branch, _ = Branch.objects.get_or_create(
            name="Mitte",
            defaults={
                "phone": "+49301234567",
                "timezone": "Europe/Berlin",
                "country": "DE",
                "address": "Friedrichstraße 1, 10117 Berlin",
            },
        )
        user, _ = get_user_model().objects.get_or_create(
            username=f"{company.slug}-manager",
            defaults={"email": f"manager@{company.slug}.example", "is_staff": True},
        )
        user.set_password(demo_password(company.slug))
        user.is_staff, user.is_active, user.is_superuser = True, True, False
        user.save()
        Membership.objects.update_or_create(
            user=user, company=company, defaults={"role": Role.MANAGER}
        )
        token, _ = Token.objects.get_or_create(user=user)
        return {
            "company": {"id": company.pk, "slug": company.slug},
            "branch": {"id": branch.pk, "country": branch.country, "timezone": branch.timezone},
            "api_token": token.key,
            "admin": {"username": user.username, "password": demo_password(company.slug)},
            **seed_company_data(company, branch),
        }
