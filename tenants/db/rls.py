"""Row-level security and tenant-safe foreign keys on every tenant table.

Applied after every ``migrate`` (``post_migrate``, as the owning role) to each model
derived from ``TenantModel``, so a new tenant model is covered without a hand-written
migration; idempotent. ``missing_protection()`` lists what a table lacks, for the
start-up check and the catalogue test.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper

POLICY_EXPRESSION = "(askpro_bypass() OR company_id = askpro_current_company())"
POLICIES = {
    # name suffix: (command, clauses)
    "select": ("SELECT", f"USING {POLICY_EXPRESSION}"),
    "insert": ("INSERT", f"WITH CHECK {POLICY_EXPRESSION}"),
    "update": ("UPDATE", f"USING {POLICY_EXPRESSION} WITH CHECK {POLICY_EXPRESSION}"),
    "delete": ("DELETE", f"USING {POLICY_EXPRESSION}"),
}
# Inlinable SQL functions: the planner sees through them. The company cast is strict on
# purpose: no tenant ('') is an error, never an empty result.
FUNCTIONS = """
CREATE OR REPLACE FUNCTION askpro_current_company() RETURNS bigint
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT current_setting('askpro.company_id')::bigint $$;
CREATE OR REPLACE FUNCTION askpro_bypass() RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT coalesce(current_setting('askpro.bypass', true), '') = 'on' $$;
"""


def _name(*parts: str) -> str:
    """A constraint name within PostgreSQL's 63 bytes, stable for the same parts."""
    name = "_".join(parts)
    if len(name) <= 63:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]  # noqa: S324 - a name, not security
    return f"{name[:54]}_{digest}"


@dataclass(frozen=True)
class TenantFK:
    table: str
    column: str
    target_table: str
    name: str


def tenant_models() -> list[type[models.Model]]:
    from tenants.models import TenantModel

    return [
        model
        for model in apps.get_models()
        if issubclass(model, TenantModel) and not model._meta.proxy and model._meta.managed
    ]


def unique_name(table: str) -> str:
    return _name(table, "id_company_uniq")


def tenant_foreign_keys(model: type[models.Model]) -> list[TenantFK]:
    """The model's foreign keys to other tenant models, as (column, company) pairs."""
    from tenants.models import TenantModel

    table = model._meta.db_table
    found = []
    for field in model._meta.concrete_fields:
        target = field.related_model
        if field.many_to_one and isinstance(target, type) and issubclass(target, TenantModel):
            found.append(
                TenantFK(
                    table=table,
                    column=field.column,
                    target_table=target._meta.db_table,
                    name=_name(table, field.column, "same_company"),
                )
            )
    return found


def _constraints(cursor: Any, table: str) -> set[str]:
    cursor.execute("SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass", [table])
    return {row[0] for row in cursor.fetchall()}


def _policies(cursor: Any, table: str) -> set[str]:
    cursor.execute("SELECT policyname FROM pg_policies WHERE tablename = %s", [table])
    return {row[0] for row in cursor.fetchall()}


def protect_all(connection: BaseDatabaseWrapper, app_role: str | None) -> None:
    """Create what is missing: functions, unique keys, composite FKs, forced RLS, grants."""
    if connection.vendor != "postgresql":
        return
    quote = connection.ops.quote_name
    models_ = tenant_models()
    with connection.cursor() as cursor:
        cursor.execute(FUNCTIONS)
        for model in models_:  # targets first: a composite FK needs its unique key
            table = model._meta.db_table
            if unique_name(table) not in _constraints(cursor, table):
                cursor.execute(
                    f"ALTER TABLE {quote(table)} ADD CONSTRAINT {quote(unique_name(table))} "
                    "UNIQUE (id, company_id)"
                )
        for model in models_:
            table = model._meta.db_table
            existing = _constraints(cursor, table)
            for fk in tenant_foreign_keys(model):
                if fk.name not in existing:
                    cursor.execute(
                        f"ALTER TABLE {quote(table)} ADD CONSTRAINT {quote(fk.name)} "
                        f"FOREIGN KEY ({quote(fk.column)}, company_id) "
                        f"REFERENCES {quote(fk.target_table)} (id, company_id) "
                        "DEFERRABLE INITIALLY DEFERRED"
                    )
            cursor.execute(
                f"ALTER TABLE {quote(table)} ENABLE ROW LEVEL SECURITY; "
                f"ALTER TABLE {quote(table)} FORCE ROW LEVEL SECURITY"
            )
            present = _policies(cursor, table)
            for suffix, (command, clauses) in POLICIES.items():
                name = f"askpro_tenant_{suffix}"
                if name not in present:
                    cursor.execute(
                        f"CREATE POLICY {quote(name)} ON {quote(table)} FOR {command} {clauses}"
                    )
        if app_role:
            _grant(cursor, quote(app_role))


def _grant(cursor: Any, role: str) -> None:
    cursor.execute(
        f"GRANT USAGE ON SCHEMA public TO {role}; "
        f"GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA public "
        f"TO {role}; "
        f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {role}; "
        f"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO {role}"
    )


def missing_protection(connection: BaseDatabaseWrapper) -> list[str]:
    """Describe every tenant table lacking forced RLS, its four policies or its keys."""
    if connection.vendor != "postgresql":
        return []
    problems: list[str] = []
    with connection.cursor() as cursor:
        for model in tenant_models():
            table = model._meta.db_table
            cursor.execute(
                "SELECT relrowsecurity, relforcerowsecurity FROM pg_class "
                "WHERE oid = to_regclass(%s)",
                [table],
            )
            row = cursor.fetchone()
            if row is None:
                continue  # not migrated yet (migrate runs its checks first)
            enabled, forced = row
            if not (enabled and forced):
                problems.append(f"{table}: row-level security is not enabled and forced")
            cursor.execute(
                "SELECT cmd FROM pg_policies WHERE tablename = %s AND policyname LIKE %s",
                [table, "askpro_tenant_%"],
            )
            commands = {row[0] for row in cursor.fetchall()}
            if commands != {"SELECT", "INSERT", "UPDATE", "DELETE"}:
                problems.append(f"{table}: tenant policies cover {sorted(commands)}")
            constraints = _constraints(cursor, table)
            wanted = {unique_name(table)} | {fk.name for fk in tenant_foreign_keys(model)}
            for name in sorted(wanted - constraints):
                problems.append(f"{table}: constraint {name} is missing")
    return problems
