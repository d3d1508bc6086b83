"""Onboard a company from nothing: the company, its first branch, its manager (idempotent)."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_email
from django.db import transaction

from tenants.context import tenant_context
from tenants.models import Branch, Company, Membership, Role


def _errors(exc: ValidationError) -> str:
    if hasattr(exc, "message_dict"):
        return "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
    return " ".join(exc.messages)


class Command(BaseCommand):
    help = (
        "Create (or bring up to date) a company, optionally its first branch and a manager "
        "user, and print their ids as JSON. Re-running with the same arguments changes "
        "nothing. The manager gets no password (they set one via password reset)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--slug", required=True)
        parser.add_argument("--name", required=True)
        parser.add_argument("--country", required=True, help="ISO 3166 code, e.g. DE")
        parser.add_argument("--timezone", required=True, help="IANA zone, e.g. Europe/Berlin")
        parser.add_argument("--branch-name", default="")
        parser.add_argument("--branch-phone", default="", help="the number callers dial")
        parser.add_argument("--manager-email", default="")
        parser.add_argument(
            "--auto-provision-agents",
            action="store_true",
            help="provision a Retell agent for each new branch automatically",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["branch_phone"] and not options["branch_name"]:
            raise CommandError("--branch-phone needs --branch-name")
        try:
            with transaction.atomic():
                result = self._create(options)
        except ValidationError as exc:
            raise CommandError(_errors(exc)) from exc
        self.stdout.write(json.dumps(result, indent=2))

    def _create(self, options: dict[str, Any]) -> dict[str, Any]:
        values = {
            "name": options["name"],
            "country": options["country"].upper(),
            "timezone": options["timezone"],
        }
        if options["auto_provision_agents"]:
            values["auto_provision_agents"] = True
        company = Company.objects.filter(slug=options["slug"]).first()
        created = company is None
        company = company or Company(slug=options["slug"])
        changed = [k for k, v in values.items() if getattr(company, k) != v]
        for key, value in values.items():
            setattr(company, key, value)
        company.full_clean()
        if created or changed:
            company.save()
        result: dict[str, Any] = {
            "company": {"id": company.pk, "slug": company.slug, "created": created},
            "branch": None,
            "manager": None,
        }
        with tenant_context(company):
            if options["branch_name"]:
                result["branch"] = self._branch(company, options)
        if options["manager_email"]:
            result["manager"] = self._manager(company, options["manager_email"])
        return result

    def _branch(self, company: Company, options: dict[str, Any]) -> dict[str, Any]:
        branch = Branch.objects.filter(name=options["branch_name"]).first()
        created = branch is None
        if branch is None:
            branch = Branch(
                name=options["branch_name"], timezone=company.timezone, country=company.country
            )
        if options["branch_phone"]:
            branch.phone = options["branch_phone"]
        branch.full_clean(exclude=["company"])  # normalises the phone to E.164
        branch.save()
        return {"id": branch.pk, "name": branch.name, "phone": branch.phone, "created": created}

    def _manager(self, company: Company, email: str) -> dict[str, Any]:
        validate_email(email)
        user, created = get_user_model().objects.get_or_create(
            username=email.lower(), defaults={"email": email, "is_staff": True}
        )
        if created:
            user.set_unusable_password()
            user.save()
        Membership.objects.update_or_create(
            user=user, company=company, defaults={"role": Role.MANAGER}
        )
        return {"id": user.pk, "username": user.get_username(), "created": created}
