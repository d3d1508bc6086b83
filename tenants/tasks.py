"""Celery task bases: every task starts with no tenant; tenant tasks bind one by id."""

from __future__ import annotations

from typing import Any

from celery import Task

from tenants.context import TenantNotSet, no_tenant, tenant_context


class UnscopedTask(Task):
    """The app's default task class: a task never inherits its caller's tenant.

    A worker starts with nothing bound; eager runs (tests, ``make run`` without a broker)
    must behave the same, so the body runs with the scope cleared.
    """

    abstract = True

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with no_tenant():
            return super().__call__(*args, **kwargs)


class TenantTask(UnscopedTask):
    """A task whose body runs inside the company named by its ``company_id`` argument.

    Tasks take ids, never model instances (DESIGN.md, Tenancy)::

        @app.task(base=TenantTask)
        def sync_appointment(*, company_id: int, appointment_id: int) -> None: ...
    """

    abstract = True

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        company_id = kwargs.get("company_id")
        if not isinstance(company_id, int) or isinstance(company_id, bool):
            raise TenantNotSet(f"task {self.name} was called without company_id=<int>")
        with no_tenant(), tenant_context(company_id):
            return Task.__call__(self, *args, **kwargs)
