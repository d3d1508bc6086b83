"""Print everything a company holds about a customer as JSON:
``export_customer --company SLUG --phone NUMBER``."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.serializers.json import DjangoJSONEncoder

from bookings.privacy import NothingToExport, export_phone
from tenants.commands import add_company_argument, add_phone_argument, for_company, phone_option
from tenants.models import Company


class Command(BaseCommand):
    help = (
        "Print the customer with this phone number as JSON: their details, appointments "
        "with history, payments and messages, calls with transcripts, provider events."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_company_argument(parser)
        add_phone_argument(parser)

    @for_company
    def handle(self, *args: Any, company: Company, **options: Any) -> None:
        phone = phone_option(options, company)
        try:
            data = export_phone(phone)
        except NothingToExport as exc:
            raise CommandError(f"Nothing to export in {company.slug}: {exc}") from None
        data = {"company": company.slug, **data}
        self.stdout.write(json.dumps(data, cls=DjangoJSONEncoder, ensure_ascii=False, indent=2))
