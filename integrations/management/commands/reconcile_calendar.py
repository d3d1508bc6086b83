"""Reconcile Cal.com bookings with our appointments now (beat does it every 15 minutes)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from integrations.calendar.reconcile import Summary, connected_company_ids, reconcile_company
from tenants.commands import add_company_argument
from tenants.models import Company


class Command(BaseCommand):
    help = (
        "Compare the next 14 days of Cal.com bookings with our appointments and repair "
        "drift (cancelled, moved or new at Cal.com); report appointments Cal.com doesn't "
        "know. Every company with Cal.com connected, or only --company."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_company_argument(parser, required=False)
        parser.add_argument(
            "--json", dest="as_json", action="store_true", help="one JSON object per company"
        )

    def handle(self, *args: Any, company: str | None, as_json: bool, **options: Any) -> None:
        if company:
            found = Company.objects.filter(slug=company).values_list("pk", flat=True).first()
            if found is None:
                raise CommandError(f"No company with slug {company!r}.")
            company_ids = [found]
        else:
            company_ids = connected_company_ids()
        slugs = dict(Company.objects.filter(pk__in=company_ids).values_list("pk", "slug"))
        for company_id in company_ids:
            summary = reconcile_company(company_id)
            self.stdout.write(self._line(slugs[company_id], summary, as_json=as_json))

    @staticmethod
    def _line(slug: str, summary: Summary, *, as_json: bool) -> str:
        if as_json:
            return json.dumps({"company": slug, **summary.as_dict()}, sort_keys=True)
        if not summary.connected:
            return f"{slug}: Cal.com not connected, nothing to do"
        if summary.skipped:
            return f"{slug}: another reconciliation is running, skipped"
        text = (
            f"{slug}: {summary.checked} Cal.com bookings checked; created {summary.created}, "
            f"linked {summary.linked}, moved {summary.moved}, cancelled {summary.cancelled}; "
            f"unknown at Cal.com {summary.missing_at_calcom}, refused {summary.failed}"
        )
        return text + (f"; stopped early: {summary.error}" if summary.error else "")
