"""Create or update a branch's Retell voice agent (LLM, agent, phone number)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from integrations.errors import IntegrationError
from integrations.provisioning.agent import ProvisioningError, provision
from tenants.context import all_tenants, tenant_context
from tenants.models import Branch, Company


def company_of_branch(branch_id: int) -> Company:
    """The one cross-tenant read: which company a branch id belongs to."""
    with all_tenants(f"provision_agent: company of branch {branch_id}"):
        company_id = Branch.objects.filter(pk=branch_id).values_list("company_id", flat=True)
        found = company_id.first()
    if found is None:
        raise CommandError(f"No branch with id {branch_id}.")
    return Company.objects.get(pk=found)


class Command(BaseCommand):
    help = (
        "Create or update the Retell voice agent of a branch with the company's own Retell "
        "key: its LLM (prompt, tools), agent and phone number. --dry-run prints the "
        "differences and changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--branch", type=int, required=True, metavar="ID")
        parser.add_argument("--dry-run", action="store_true", help="show the plan only")

    def handle(self, *args: Any, branch: int, dry_run: bool, **options: Any) -> None:
        company = company_of_branch(branch)
        with tenant_context(company):
            row = Branch.objects.get(pk=branch)
            try:
                changes = provision(row, dry_run=dry_run)
            except (IntegrationError, ProvisioningError) as exc:
                raise CommandError(f"branch {row.pk} ({row.name}): {exc}") from exc
        title = "Plan" if dry_run else "Provisioned"
        self.stdout.write(f"{title}: branch {row.pk} {row.name!r} of {company.slug}")
        for change in changes:
            self.stdout.write(f"  {change}")
        if dry_run:
            self.stdout.write("Dry run: nothing was changed.")
