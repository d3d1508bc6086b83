"""The mandatory tenant manager.

Scoping happens where SQL is made, not where a queryset is built: querysets built at
import time (``queryset = X.objects.all()`` on a view, a serializer field) stay legal,
and every way a query reaches the database -- iteration, ``count``, ``exists``,
aggregates, a ``Subquery``, prefetching, forward FK access -- passes through
``Query.get_compiler``. There the bound company is added to the WHERE clause, or
:class:`~tenants.context.TenantNotSet` is raised. Writes that bypass the compiler
(``update``, ``delete``, ``bulk_create``, inserts) are guarded in the queryset and in
:class:`~tenants.models.TenantModel`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from django.db import models
from django.db.models.sql import Query

from tenants.context import TenantMismatch, require_scope

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models.sql.compiler import SQLCompiler

    from tenants.models import TenantModel

_M = TypeVar("_M", bound=models.Model)


class TenantQuery(Query):
    """A ``Query`` that restricts itself to the bound company when compiled."""

    _tenant_scoped = False

    def get_compiler(
        self,
        using: str | None = None,
        connection: BaseDatabaseWrapper | None = None,
        elide_empty: bool = True,
    ) -> SQLCompiler:
        query: Query = self
        if not self._tenant_scoped:
            scope = require_scope()
            query = self.clone()
            query._tenant_scoped = True  # type: ignore[attr-defined]
            if scope.company_id is not None:
                query.add_q(models.Q(company_id=scope.company_id))
        return Query.get_compiler(query, using, connection, elide_empty)


class TenantQuerySet(models.QuerySet[_M]):
    """QuerySet of a tenant model: reads scoped at compile time, writes guarded here."""

    def __init__(
        self,
        model: type[models.Model] | None = None,
        query: Query | None = None,
        using: str | None = None,
        hints: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(model, TenantQuery(model) if query is None else query, using, hints)

    def _scoped_for_write(self) -> TenantQuerySet[_M]:
        # UpdateQuery/DeleteQuery replace TenantQuery's class, so filter before they do.
        scope = require_scope()
        if scope.company_id is None:
            return self
        return self.filter(company_id=scope.company_id)

    def update(self, **kwargs: Any) -> int:
        self._refuse_foreign_company(kwargs)
        return super(TenantQuerySet, self._scoped_for_write()).update(**kwargs)

    def _update(self, values: Any) -> int:
        scoped = super(TenantQuerySet, self._scoped_for_write())
        return scoped._update(values)  # type: ignore[attr-defined]

    def delete(self) -> tuple[int, dict[str, int]]:
        return super(TenantQuerySet, self._scoped_for_write()).delete()

    delete.alters_data = True  # type: ignore[attr-defined]
    delete.queryset_only = True  # type: ignore[attr-defined]

    def _raw_delete(self, using: str | None) -> int:
        return super(TenantQuerySet, self._scoped_for_write())._raw_delete(using)

    def bulk_create(self, objs: Iterable[_M], *args: Any, **kwargs: Any) -> list[_M]:
        objs = list(objs)
        for obj in objs:
            cast("TenantModel", obj).assign_company()
        return super().bulk_create(objs, *args, **kwargs)

    def bulk_update(
        self, objs: Iterable[_M], fields: Iterable[str], batch_size: int | None = None
    ) -> int:
        objs = list(objs)
        for obj in objs:
            cast("TenantModel", obj).assign_company()
        return super().bulk_update(objs, fields, batch_size=batch_size)

    def raw(
        self,
        raw_query: Any,
        params: Any = (),
        translations: dict[str, str] | None = None,
        using: str | None = None,
    ) -> models.query.RawQuerySet[_M]:
        # Raw SQL can't be scoped here; demand a tenant so it is at least deliberate.
        require_scope()
        return super().raw(raw_query, params, translations, using)

    @staticmethod
    def _refuse_foreign_company(values: dict[str, Any]) -> None:
        scope = require_scope()
        for key in ("company", "company_id"):
            new = getattr(values.get(key), "pk", values.get(key))
            # Expressions (bulk_update's CASE) carry rows already checked one by one.
            if isinstance(new, int) and scope.company_id not in (None, new):
                raise TenantMismatch("update() would move rows into another company")


class TenantManager(models.Manager[_M]):
    """Default and base manager of every tenant model."""

    _queryset_class = TenantQuerySet
