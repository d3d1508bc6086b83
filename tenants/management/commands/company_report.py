"""Print how many rows each tenant model holds for one company."""

from __future__ import annotations

import json
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandParser

from tenants.commands import add_company_argument, for_company
from tenants.models import Company, TenantModel


class Command(BaseCommand):
    help = "Count a company's rows per tenant model (operators' sanity check)."

    def add_arguments(self, parser: CommandParser) -> None:
        add_company_argument(parser, required=False)
        parser.add_argument("--json", action="store_true")

    @for_company
    def handle(self, *args: Any, company: Company, **options: Any) -> None:
        counts = {
            model._meta.label: model.objects.count()
            for model in apps.get_models()
            if issubclass(model, TenantModel)
        }
        if options["json"]:
            self.stdout.write(json.dumps({"company": company.slug, "counts": counts}))
            return
        for label, count in sorted(counts.items()):
            self.stdout.write(f"{label:40} {count}")
