"""Start-up checks: every model holding company data is a tenant model."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.apps import apps
from django.core import checks
from django.db import models

from tenants.managers import TenantManager

# Models with a company foreign key that are deliberately not tenant models.
NAMED_EXCEPTIONS = frozenset({"tenants.company", "tenants.membership"})


def _points_to_company(model: type[models.Model]) -> bool:
    from tenants.models import Company

    return any(
        field.is_relation and field.many_to_one and field.related_model is Company
        for field in model._meta.get_fields()
    )


def _unique_sets(model: type[models.Model]) -> list[tuple[str, tuple[str, ...]]]:
    sets = [
        (str(c.name), tuple(c.fields))
        for c in model._meta.constraints
        if isinstance(c, models.UniqueConstraint) and c.fields
    ]
    sets += [("unique_together", tuple(fields)) for fields in model._meta.unique_together]
    sets += [
        (f"{field.name} (unique=True)", (field.name,))
        for field in model._meta.local_fields
        # Random UUIDs are globally unique by construction; ids are the primary key.
        if field.unique and not field.primary_key and not isinstance(field, models.UUIDField)
    ]
    return sets


@checks.register(checks.Tags.models)
def check_tenant_models(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    from tenants.models import TenantModel

    errors: list[checks.CheckMessage] = []
    for model in apps.get_models(include_auto_created=True):
        label = model._meta.label_lower
        is_tenant = issubclass(model, TenantModel)
        if _points_to_company(model) and not is_tenant and label not in NAMED_EXCEPTIONS:
            errors.append(
                checks.Error(
                    f"{label} has a foreign key to Company but is not a TenantModel.",
                    hint="Derive it from tenants.models.TenantModel.",
                    obj=model,
                    id="tenants.E001",
                )
            )
        if not is_tenant:
            continue
        for kind, manager in (("default", model._default_manager), ("base", model._base_manager)):
            if not isinstance(manager, TenantManager):
                errors.append(
                    checks.Error(
                        f"{label}'s {kind} manager is not a TenantManager.",
                        obj=model,
                        id="tenants.E002",
                    )
                )
        for field in model._meta.local_many_to_many:
            through = field.remote_field.through
            if not (isinstance(through, type) and issubclass(through, TenantModel)):
                errors.append(
                    checks.Error(
                        f"{label}.{field.name} needs an explicit through model that is a "
                        "TenantModel.",
                        obj=model,
                        id="tenants.E003",
                    )
                )
        for name, fields in _unique_sets(model):
            if "company" not in fields:
                errors.append(
                    checks.Error(
                        f"{label}: unique {name} on {fields} must include company.",
                        obj=model,
                        id="tenants.E004",
                    )
                )
    return errors


_migrating = False


@contextmanager
def migrating() -> Iterator[None]:
    """Mark a running ``migrate``: it protects the tables after it has created them."""
    global _migrating
    _migrating = True
    try:
        yield
    finally:
        _migrating = False


@checks.register(checks.Tags.database)
def check_row_level_security(databases: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Every tenant table has forced RLS, its four policies and its tenant-safe keys."""
    from django.db import connections

    from tenants.db.rls import missing_protection

    if _migrating:
        return []
    return [
        checks.Error(problem, hint="Run `manage.py migrate` as the owner.", id="tenants.E005")
        for alias in databases or []
        for problem in missing_protection(connections[alias])
    ]
