"""Which database role does what: the app's role serves requests; the owner migrates."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import connections

CREDENTIALS = ("USER", "PASSWORD", "HOST", "PORT")


def app_role() -> str | None:
    """The role the running app connects as, when it isn't the owner (else None)."""
    role = settings.DATABASE_APP_ROLE
    return str(role) if role else None


@contextmanager
def as_owner(alias: str = "default") -> Iterator[None]:
    """Run the block on ``alias`` with the owner's credentials (``MIGRATION_DATABASE_URL``).

    The owner has BYPASSRLS and owns the tables; it creates the test database, migrates
    and grants. The database name stays (a test database keeps its test name).
    """
    connection = connections[alias]
    owner = settings.MIGRATION_DATABASE
    if connection.vendor != "postgresql" or not app_role():
        yield
        return
    saved: dict[str, Any] = {key: connection.settings_dict.get(key) for key in CREDENTIALS}
    saved["TENANT_SETTINGS"] = connection.settings_dict.get("TENANT_SETTINGS")
    connection.close()
    connection.settings_dict.update({key: owner.get(key) for key in CREDENTIALS})
    connection.settings_dict["TENANT_SETTINGS"] = False
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.update(saved)
