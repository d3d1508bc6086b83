"""A PostgreSQL backend that carries the tenant into every statement.

Each statement sent through an app-role connection is prefixed, in the same round trip,
with ``set_config(..., true)`` calls stating the Python tenant context of that moment:

    SELECT set_config('askpro.company_id', '42', true),
           set_config('askpro.bypass', 'off', true); <the statement>

A multi-statement query string runs as one implicit transaction (or inside the open one),
so the values are transaction-scoped: they vanish at COMMIT/ROLLBACK and can't ride a
pooled or persistent connection into the next request. With no tenant bound, the prefix
sets ``''``, which the policies' strict ``::bigint`` cast turns into an error instead of
an empty result. Row-level security (``tenants.db.rls``) reads these values.

Requires client-side parameter binding (Django's default for psycopg 3) and no
server-side cursors (``DISABLE_SERVER_SIDE_CURSORS``), since neither a prepared nor a
named cursor accepts two statements.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.db.backends.postgresql import base

from tenants.context import current_scope

COMPANY_SETTING = "askpro.company_id"
BYPASS_SETTING = "askpro.bypass"
# Sent as they are: transaction control (a prefix would fail in an aborted transaction
# and keep ROLLBACK TO SAVEPOINT from running) and what can't run in a transaction block.
_SENT_AS_IS = (
    "SAVEPOINT",
    "RELEASE",
    "ROLLBACK",
    "COMMIT",
    "BEGIN",
    "SET ",
    "RESET ",
    "CREATE DATABASE",
    "DROP DATABASE",
    "VACUUM",
    "ALTER SYSTEM",
    "CREATE INDEX CONCURRENTLY",
    "DROP INDEX CONCURRENTLY",
    "REINDEX",
)


def scope_statement() -> str:
    """The ``SELECT set_config(...)`` stating the current Python tenant context."""
    scope = current_scope()
    if scope is None:
        company, bypass = "", "off"
    elif scope.company_id is None:
        company, bypass = "0", "on"  # "0": no company has it; keeps the cast valid
    else:
        company, bypass = str(int(scope.company_id)), "off"
    return (
        f"SELECT set_config('{COMPANY_SETTING}', '{company}', true), "
        f"set_config('{BYPASS_SETTING}', '{bypass}', true)"
    )


def state_the_tenant(
    execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]
) -> Any:
    """Execute wrapper: run ``sql`` with the tenant settings of this moment."""
    connection = context["connection"]
    if not connection.settings_dict.get("TENANT_SETTINGS") or (
        sql.lstrip()[:30].upper().startswith(_SENT_AS_IS)
    ):
        return execute(sql, params, many, context)
    cursor = context["cursor"].cursor
    if many:  # executemany takes one statement: state the tenant first, same transaction
        with transaction.atomic(using=connection.alias, savepoint=False):
            cursor.execute(scope_statement())
            return execute(sql, params, many, context)
    result = execute(f"{scope_statement()}; {sql}", params, many, context)
    cursor.nextset()  # step past set_config's row to the statement's own result
    return result


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.execute_wrappers.append(state_the_tenant)
