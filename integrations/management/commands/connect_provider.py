"""Store a company's API key for a provider (read from stdin, never from the command line)."""

from __future__ import annotations

import getpass
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from integrations.credentials import connect
from integrations.models import Provider
from tenants.commands import add_company_argument, for_company
from tenants.models import Company


class Command(BaseCommand):
    help = (
        "Store a company's provider API key, encrypted. The key is read from stdin "
        "(or prompted for), so it stays out of shell history and process lists."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_company_argument(parser)
        parser.add_argument("--provider", required=True, choices=Provider.values)
        parser.add_argument("--account", default="", help="Stripe Connect account (acct_…)")

    @for_company
    def handle(
        self, *args: Any, company: Company, provider: str, account: str, **options: Any
    ) -> None:
        if sys.stdin.isatty():
            api_key = getpass.getpass(f"{provider} API key for {company.slug}: ")
        else:
            api_key = sys.stdin.readline()
        api_key = api_key.strip()
        if not api_key:
            raise CommandError("no API key given on stdin")
        connect(provider, api_key, account=account)
        self.stdout.write(f"{company.slug}: {provider} connected (key ends …{api_key[-4:]})")
