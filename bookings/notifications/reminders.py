"""Reminders 24 hours ahead: beat runs ``bookings.send_reminders`` every 10 minutes.

Each confirmed appointment starting within the next 24 hours whose current start hasn't
been reminded gets one ``notify.reminder:<id>:<start>`` job, queued in its company's
tenant together with ``Appointment.reminded_start``; a moved appointment's new start
is not reminded yet, so it gets a fresh reminder.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from bookings.models import Appointment, AppointmentStatus
from tenants.context import all_tenants, tenant_context

logger = logging.getLogger(__name__)

AHEAD = timedelta(hours=24)
BATCH = 500


def _due(now: datetime) -> Q:
    return Q(status=AppointmentStatus.CONFIRMED, start__gt=now, start__lte=now + AHEAD) & (
        Q(reminded_start__isnull=True) | ~Q(reminded_start=F("start"))
    )


def queue_due_reminders(now: datetime | None = None) -> int:
    """Queue the reminders that are due, company by company; return how many."""
    from bookings import notifications

    now = now or timezone.now()
    with all_tenants("periodic: appointment reminders"):
        companies = list(
            Appointment.objects.filter(_due(now))
            .order_by()
            .values_list("company_id", flat=True)
            .distinct()
        )
    queued = 0
    for company_id in companies:
        with tenant_context(company_id), transaction.atomic():
            due = list(
                Appointment.objects.select_for_update(skip_locked=True)
                .filter(_due(now))
                .order_by("start")[:BATCH]
            )
            for appointment in due:
                notifications.reminder(appointment)
            Appointment.objects.filter(pk__in=[a.pk for a in due]).update(reminded_start=F("start"))
        queued += len(due)
    if queued:
        logger.info("queued %s reminder(s) in %s company(ies)", queued, len(companies))
    return queued
