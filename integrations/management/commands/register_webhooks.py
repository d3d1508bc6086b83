"""Create a company's webhook endpoints and register them with Cal.com and Stripe."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from integrations.provisioning.webhooks import register_webhooks
from tenants.commands import add_company_argument, for_company
from tenants.models import Company


class Command(BaseCommand):
    help = (
        "Ensure the company's Retell, Cal.com and Stripe webhook endpoints exist and are "
        "registered at Cal.com and Stripe (idempotent). Providers without a key are skipped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_company_argument(parser)

    @for_company
    def handle(self, *args: Any, company: Company, **options: Any) -> None:
        registrations = register_webhooks(company)
        self.stdout.write(f"Webhooks of {company.slug}:")
        for registration in registrations:
            self.stdout.write(f"  {registration}")
        failed = [r.provider for r in registrations if r.action == "failed"]
        if failed:
            raise CommandError(f"registration failed for {', '.join(failed)}; run it again")
