"""Celery: calendar reconciliation, every 15 minutes (beat), one task per company."""

from __future__ import annotations

from typing import Any

from askpro.celery import app
from integrations.calendar.reconcile import connected_company_ids, reconcile_company
from tenants.tasks import TenantTask


@app.task(name="integrations.calendar.reconcile")
def reconcile_calendars() -> int:
    """Queue one reconciliation per company with Cal.com connected; returns how many."""
    company_ids = connected_company_ids()
    for company_id in company_ids:
        reconcile_calendar_of.delay(company_id=company_id)
    return len(company_ids)


@app.task(name="integrations.calendar.reconcile_company", base=TenantTask)
def reconcile_calendar_of(*, company_id: int) -> dict[str, Any]:
    """Reconcile one company (its tenant is bound by ``TenantTask``)."""
    return reconcile_company(company_id).as_dict()
