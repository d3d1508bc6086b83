"""An appointment saved or deleted invalidates its staff member's cached Cal.com busy times.

Connected by ``IntegrationsConfig.ready``. ``QuerySet.update()`` sends no signal: code
that moves appointments that way (the Cal.com webhook's reschedule, reconciliation)
calls ``invalidate_staff`` itself or lives with the ``FRESH_SECONDS`` expiry.
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save

from bookings.models import Appointment
from integrations.calendar.busy import invalidate_staff


def _appointment_changed(sender: type[Appointment], instance: Appointment, **kwargs: Any) -> None:
    if instance.company_id and instance.staff_id:
        invalidate_staff(instance.company_id, [instance.staff_id])


def connect() -> None:
    post_save.connect(_appointment_changed, sender=Appointment, dispatch_uid="calendar-busy-save")
    post_delete.connect(
        _appointment_changed, sender=Appointment, dispatch_uid="calendar-busy-delete"
    )
