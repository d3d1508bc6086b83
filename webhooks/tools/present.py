"""Slots and appointments as tool answers: machine fields beside a spoken text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bookings.availability import Slot
from bookings.models import Appointment
from webhooks.tools import speech
from webhooks.tools.context import CallContext


def slot(ctx: CallContext, found: Slot, staff_names: Mapping[int, str]) -> dict[str, Any]:
    name = staff_names.get(found.staff_id, "")
    return {
        "start": ctx.local(found.start).isoformat(),
        "end": ctx.local(found.end).isoformat(),
        "staff": found.staff_id,
        "staff_name": name,
        "spoken": f"{ctx.when(found.start)} {speech.with_staff(ctx.lang, name)}",
    }


def slots_spoken(ctx: CallContext, found: Sequence[Slot], staff_names: Mapping[int, str]) -> str:
    return speech.times(
        ctx.lang, [(ctx.local(s.start), staff_names.get(s.staff_id, "")) for s in found], ctx.today
    )


def appointment(ctx: CallContext, booked: Appointment) -> dict[str, Any]:
    """``booked`` with ``service`` and ``staff`` selected."""
    return {
        "id": booked.pk,
        "start": ctx.local(booked.start).isoformat(),
        "end": ctx.local(booked.end).isoformat(),
        "status": booked.status,
        "service": booked.service.name,
        "staff": booked.staff_id,
        "staff_name": booked.staff.name,
        "spoken": appointment_spoken(ctx, booked),
    }


def appointment_spoken(ctx: CallContext, booked: Appointment) -> str:
    return (
        f"{booked.service.name} {ctx.when(booked.start)} "
        f"{speech.with_staff(ctx.lang, booked.staff.name)}"
    )
