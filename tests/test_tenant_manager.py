"""Every ORM path on every tenant model: raises without a tenant, scoped within one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Count, ProtectedError, Subquery
from django.db.models.query import prefetch_related_objects

from tenants.context import (
    TenantMismatch,
    TenantNotSet,
    all_tenants,
    current_company_id,
    current_scope,
    tenant_context,
)
from tenants.models import Company, TenantModel
from tests.factories import TENANT_FACTORIES

pytestmark = pytest.mark.smoke

TENANT_MODELS = sorted(
    (m for m in apps.get_models() if issubclass(m, TenantModel)), key=lambda m: m._meta.label
)


def _ids(model: type[models.Model]) -> str:
    return model._meta.label


def test_every_tenant_model_has_a_factory() -> None:
    assert set(TENANT_MODELS) == set(TENANT_FACTORIES), "add the model to TENANT_FACTORIES"


def test_the_tenant_managers_are_default_and_base() -> None:
    for model in TENANT_MODELS:
        assert model._default_manager.__class__.__name__ == "TenantManager"
        assert model._base_manager.__class__.__name__ == "TenantManager"


async def _collect_async(queryset: models.QuerySet[Any]) -> list[Any]:
    return [row async for row in queryset]


def _pks(rows: Any) -> set[Any]:
    return {getattr(row, "pk", row) for row in rows}


# path -> (run it, what it returns when only company a's row ``mine`` is visible)
READ_PATHS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    "iterate": (lambda m: _pks(m.objects.all()), lambda mine: {mine.pk}),
    "async iterate": (
        lambda m: _pks(async_to_sync(_collect_async)(m.objects.all())),
        lambda mine: {mine.pk},
    ),
    "iterator": (lambda m: _pks(m.objects.iterator()), lambda mine: {mine.pk}),
    "get": (lambda m: m.objects.get().pk, lambda mine: mine.pk),
    "first": (lambda m: m.objects.first().pk, lambda mine: mine.pk),
    "exists": (lambda m: m.objects.exclude(company_id=0).exists(), lambda mine: True),
    "count": (lambda m: m.objects.count(), lambda mine: 1),
    "aggregate": (lambda m: m.objects.aggregate(n=Count("pk"))["n"], lambda mine: 1),
    "values": (lambda m: [r["pk"] for r in m.objects.values("pk")], lambda mine: [mine.pk]),
    "values_list": (lambda m: list(m.objects.values_list("pk", flat=True)), lambda m: [m.pk]),
    "in_bulk": (lambda m: set(m.objects.in_bulk()), lambda mine: {mine.pk}),
    "subquery": (
        lambda m: _pks(Company.objects.filter(pk__in=Subquery(m.objects.values("company_id")))),
        lambda mine: {mine.company_id},
    ),
    "filter in": (
        lambda m: _pks(Company.objects.filter(pk__in=m.objects.values("company_id"))),
        lambda mine: {mine.company_id},
    ),
    "union": (
        lambda m: _pks(m.objects.order_by().union(m.objects.order_by())),
        lambda mine: {mine.pk},
    ),
    "raw": (
        lambda m: _pks(m.objects.raw(f"SELECT * FROM {m._meta.db_table}")),  # noqa: S608
        None,
    ),
}


@pytest.mark.parametrize("model", TENANT_MODELS, ids=_ids)
@pytest.mark.parametrize("path", list(READ_PATHS))
def test_reading_without_a_tenant_raises(world: Any, model: type[models.Model], path: str) -> None:
    run, _ = READ_PATHS[path]
    with pytest.raises(TenantNotSet):
        run(model)


@pytest.mark.parametrize("model", TENANT_MODELS, ids=_ids)
@pytest.mark.parametrize("path", [p for p, (_, expect) in READ_PATHS.items() if expect])
def test_reading_inside_a_tenant_sees_only_that_tenant(
    world: Any, model: type[models.Model], path: str
) -> None:
    run, expect = READ_PATHS[path]
    with tenant_context(world.a):
        assert run(model) == expect(world.rows["a"][model])


@pytest.mark.parametrize("model", TENANT_MODELS, ids=_ids)
def test_counts_are_per_tenant_and_the_bypass_sees_all(
    world: Any, model: type[models.Model]
) -> None:
    with tenant_context(world.a):
        assert model.objects.count() == 1
    with tenant_context(world.b):
        assert model.objects.count() == 1
    with all_tenants("test: count across companies"):
        assert model.objects.count() == 2


WRITE_PATHS: dict[str, Callable[[type[models.Model], Any], Any]] = {
    "create": lambda m, obj: TENANT_FACTORIES[m](),
    "bulk_create": lambda m, obj: m.objects.bulk_create([_unsaved(m, obj)]),
    "update": lambda m, obj: m.objects.update(company_id=obj.company_id),
    "queryset delete": lambda m, obj: m.objects.all().delete(),
    "save existing": lambda m, obj: obj.save(),
    "instance delete": lambda m, obj: obj.delete(),
    "refresh_from_db": lambda m, obj: obj.refresh_from_db(),
    "bulk_update": lambda m, obj: m.objects.bulk_update([obj], ["company"]),
}


def _unsaved(model: type[models.Model], obj: models.Model) -> models.Model:
    """A new, unsaved row: built with fresh related rows when a tenant is bound."""
    if current_scope() is None:
        return _copy(obj)  # never reaches the database
    related = {
        f.name: TENANT_FACTORIES[f.related_model]()
        for f in model._meta.concrete_fields
        if f.many_to_one and issubclass(f.related_model, TenantModel)
    }
    return TENANT_FACTORIES[model].build(**related)


def _copy(obj: models.Model) -> models.Model:
    clone = type(obj)(
        **{
            f.attname: getattr(obj, f.attname)
            for f in obj._meta.concrete_fields
            if not f.primary_key
        }
    )
    unique = {
        name
        for c in obj._meta.constraints
        if isinstance(c, models.UniqueConstraint)
        for name in c.fields
    }
    for name in unique:
        if isinstance(obj._meta.get_field(name), models.CharField):
            setattr(clone, name, f"{getattr(obj, name)}-copy")
    for field in obj._meta.concrete_fields:  # away from the original: no overlap
        if isinstance(field, models.DateTimeField) and getattr(clone, field.attname):
            setattr(clone, field.attname, getattr(clone, field.attname) + timedelta(days=1000))
    return clone


@pytest.mark.parametrize("model", TENANT_MODELS, ids=_ids)
@pytest.mark.parametrize("path", list(WRITE_PATHS))
def test_writing_without_a_tenant_raises(world: Any, model: type[models.Model], path: str) -> None:
    obj = world.rows["a"][model]
    with pytest.raises(TenantNotSet):
        WRITE_PATHS[path](model, obj)
    with all_tenants("test: verify nothing changed"):
        assert model.objects.count() == 2


@pytest.mark.parametrize("model", TENANT_MODELS, ids=_ids)
@pytest.mark.parametrize("path", list(WRITE_PATHS))
def test_writing_inside_a_tenant_touches_only_that_tenant(
    world: Any, model: type[models.Model], path: str
) -> None:
    theirs = world.rows["b"][model]
    with tenant_context(world.a):
        try:
            WRITE_PATHS[path](model, world.rows["a"][model])
        except (ProtectedError, ValidationError):
            pass  # the domain may refuse (protected rows, append-only history)
        except Exception:
            raise
    with all_tenants("test: the other company is untouched"):
        assert model.objects.filter(pk=theirs.pk, company=world.b).exists()


def _relations(model: type[models.Model]) -> list[models.Field[Any, Any]]:
    return [
        f
        for f in model._meta.get_fields()
        if (
            f.is_relation
            and f.related_model is not None
            and issubclass(f.related_model, TenantModel)
            and not f.auto_created
        )
        or (
            f.is_relation
            and f.auto_created
            and not f.concrete
            and f.related_model is not None
            and issubclass(f.related_model, TenantModel)
            and f.get_accessor_name() is not None
            and not f.hidden
        )
    ]


FORWARD_FKS = [
    (model, field.name)
    for model in TENANT_MODELS
    for field in model._meta.concrete_fields
    if field.many_to_one and issubclass(field.related_model, TenantModel)
]
REVERSE_RELATIONS = [
    (model, rel.get_accessor_name())
    for model in TENANT_MODELS
    for rel in model._meta.related_objects
    if not rel.hidden and issubclass(rel.related_model, TenantModel)
]
M2M_FIELDS = [(model, field.name) for model in TENANT_MODELS for field in model._meta.many_to_many]


def test_the_relation_paths_are_not_vacuous() -> None:
    assert FORWARD_FKS
    assert REVERSE_RELATIONS
    assert M2M_FIELDS


@pytest.mark.parametrize(("model", "name"), FORWARD_FKS, ids=lambda v: getattr(v, "__name__", v))
def test_forward_fk_access_without_a_tenant_raises(world: Any, model: Any, name: str) -> None:
    with tenant_context(world.a):
        obj = model.objects.get(pk=world.rows["a"][model].pk)
        assert getattr(obj, name).company_id == world.a.pk
        obj = model.objects.get(pk=obj.pk)  # fresh, nothing cached
    with pytest.raises(TenantNotSet):
        getattr(obj, name)


@pytest.mark.parametrize(
    ("model", "name"), REVERSE_RELATIONS + M2M_FIELDS, ids=lambda v: getattr(v, "__name__", v)
)
def test_related_managers_and_prefetch_without_a_tenant_raise(
    world: Any, model: Any, name: str
) -> None:
    with tenant_context(world.a):
        parent = model.objects.get(pk=world.rows["a"][model].pk)
        assert getattr(parent, name).count() >= 0
        fresh = list(model.objects.filter(pk=parent.pk))
        prefetched = list(model.objects.prefetch_related(name))
        assert all(getattr(p, name).all() is not None for p in prefetched)
    with pytest.raises(TenantNotSet):
        list(getattr(parent, name).all())
    with pytest.raises(TenantNotSet):
        prefetch_related_objects(fresh, name)


def test_a_queryset_built_without_a_tenant_is_scoped_when_evaluated(world: Any) -> None:
    model = TENANT_MODELS[0]
    built_at_import = model.objects.all()  # like a view's class attribute
    with tenant_context(world.a):
        assert [o.company_id for o in built_at_import.all()] == [world.a.pk]
    with tenant_context(world.b):
        assert [o.company_id for o in built_at_import.all()] == [world.b.pk]


def test_creating_fills_the_company_from_the_context(world: Any) -> None:
    factory = next(iter(TENANT_FACTORIES.values()))
    with tenant_context(world.b):
        obj = factory()
    assert obj.company_id == world.b.pk


def test_creating_a_row_of_another_company_is_refused(world: Any) -> None:
    from tests.testapp.models import Shelf

    with tenant_context(world.a), pytest.raises(TenantMismatch):
        Shelf.objects.create(company=world.b, name="smuggled")
    with tenant_context(world.a), pytest.raises(TenantMismatch):
        Shelf.objects.bulk_create([Shelf(company=world.b, name="smuggled")])
    with tenant_context(world.a), pytest.raises(TenantMismatch):
        Shelf.objects.update(company=world.b)
    with all_tenants("test"):
        assert not Shelf.objects.filter(name="smuggled").exists()


def test_saving_a_row_of_another_company_is_refused(world: Any) -> None:
    from tests.testapp.models import Shelf

    theirs = world.rows["b"][Shelf]
    theirs.name = "renamed by a"
    with tenant_context(world.a), pytest.raises(TenantMismatch):
        theirs.save()
    with tenant_context(world.b):
        assert Shelf.objects.get(pk=theirs.pk).name != "renamed by a"


def test_the_bypass_needs_a_reason_and_an_explicit_company_to_create() -> None:
    from tests.testapp.models import Shelf

    with pytest.raises(ValueError, match="reason"):
        all_tenants("")
    with all_tenants("test"), pytest.raises(TenantNotSet):
        Shelf(name="x").save()


def test_leaving_a_context_restores_the_outer_one(world: Any) -> None:
    with tenant_context(world.a):
        with tenant_context(world.b):
            assert current_company_id() == world.b.pk
        assert current_company_id() == world.a.pk
    with pytest.raises(TenantNotSet):
        current_company_id()


def test_the_decorator_binds_each_call(world: Any) -> None:
    @tenant_context(world.b)
    def company_seen() -> int:
        return current_company_id()

    assert company_seen() == world.b.pk
    assert company_seen() == world.b.pk
    with pytest.raises(TenantNotSet):
        current_company_id()
