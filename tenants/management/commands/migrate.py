"""``migrate`` as the owning role, then row-level security and grants for the app role."""

from __future__ import annotations

from typing import Any

from django.core.management.commands import migrate
from django.db import DEFAULT_DB_ALIAS

from tenants.checks import migrating
from tenants.db.roles import as_owner


class Command(migrate.Command):
    help = (
        "Migrate as MIGRATION_DATABASE_URL's role (the table owner), then protect every "
        "tenant table and grant the app's role (DATABASE_URL) what it needs."
    )

    def execute(self, *args: Any, **options: Any) -> Any:
        # Checks run in execute(): the RLS check (tenants.E005) would otherwise refuse
        # the very migrate that mends it.
        with as_owner(options.get("database") or DEFAULT_DB_ALIAS), migrating():
            return super().execute(*args, **options)
