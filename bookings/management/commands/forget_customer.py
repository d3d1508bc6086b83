"""Erase a customer's personal data (name, phone, e-mail, transcripts), keep their
appointments anonymised: ``forget_customer --company SLUG --phone NUMBER``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from bookings.privacy import NothingToForget, forget_phone
from tenants.commands import add_company_argument, add_phone_argument, for_company, phone_option
from tenants.models import Company


class Command(BaseCommand):
    help = (
        "Forget the customer with this phone number in one company: name, phone, e-mail, "
        "notes, call transcripts and recordings links, and every stored mention of the "
        "number or e-mail are erased; appointments stay, anonymised. One transaction."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_company_argument(parser)
        add_phone_argument(parser)
        parser.add_argument(
            "--missing-ok",
            action="store_true",
            help="exit 0 when there is nothing to forget (never known, or already forgotten)",
        )

    @for_company
    def handle(self, *args: Any, company: Company, **options: Any) -> None:
        phone = phone_option(options, company)
        try:
            erasure = forget_phone(phone)
        except NothingToForget as exc:
            if options["missing_ok"]:
                self.stdout.write(f"Nothing to forget in {company.slug}: {exc}")
                return
            raise CommandError(f"Nothing to forget in {company.slug}: {exc}") from None
        self.stdout.write(f"Personal data erased in {company.slug}:")
        for line in erasure.lines():
            self.stdout.write(f"  {line}")
        if erasure.upcoming:
            self.stdout.write(
                f"  note: {erasure.upcoming} upcoming appointment(s) still hold their slot; "
                "cancel them if the customer won't come. The business's calendar (Cal.com) "
                "and Stripe keep their own copies of the booking."
            )
