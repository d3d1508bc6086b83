"""Free slots for the phone: a few good ones, alternatives near a time, the next open days.

Built on ``bookings.availability`` (our database, minus the company's Cal.com busy times
through ``CalendarBusy``), restricted to the staff of the call's branch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import date, datetime, timedelta

from bookings.availability import Rules, Slot, StaffSchedule, load_schedules, slots_for
from bookings.models import Service, StaffMember
from integrations.calendar.busy import CalendarBusy

MAX_SLOTS = 3  # the agent offers at most three (integrations/provisioning/definition.py)
LOOKAHEAD_DAYS = 14
MAX_NEXT_DAYS = 3


@dataclasses.dataclass(slots=True)
class Search:
    """The free slots of ``staff`` over local days ``first..last``, and the schedules."""

    slots: list[Slot]
    schedules: list[StaffSchedule]
    first: date
    last: date


def search(
    service: Service,
    staff: Sequence[StaffMember],
    first: date,
    last: date,
    now: datetime,
    *,
    ignore: int | None = None,
) -> Search:
    """``ignore``: an appointment being moved, which doesn't block its own time."""
    schedules = load_schedules(
        staff, first, last, ignore_appointment=ignore, extra_busy=CalendarBusy()
    )
    rules = Rules.of(service)
    found = [slot for s in schedules for slot in slots_for(s, rules, first, last, now)]
    found.sort(key=lambda slot: (slot.start, slot.staff_id))
    return Search(found, schedules, first, last)


def closed(result: Search, day: date) -> bool:
    """Nobody who could do it works that day (no shift, or a branch closure)."""
    return all(
        day in s.closed_days or all(shift.weekday != day.weekday() for shift in s.shifts)
        for s in result.schedules
    )


def all_closed(result: Search) -> bool:
    day = result.first
    while day <= result.last:
        if not closed(result, day):
            return False
        day += timedelta(days=1)
    return True


def spread(slots: Sequence[Slot], count: int = MAX_SLOTS) -> list[Slot]:
    """Up to ``count`` slots from earliest to latest, spread evenly over the distinct start
    times, each with a staff member not offered yet where possible."""
    starts: dict[datetime, list[Slot]] = {}
    for slot in slots:
        starts.setdefault(slot.start, []).append(slot)
    ordered = sorted(starts)
    if len(ordered) > count:
        last = len(ordered) - 1
        picks = sorted({round(i * last / (count - 1)) for i in range(count)}) if count > 1 else [0]
        ordered = [ordered[i] for i in picks]
    chosen: list[Slot] = []
    used: set[int] = set()
    for start in ordered:
        options = starts[start]
        slot = next((s for s in options if s.staff_id not in used), options[0])
        used.add(slot.staff_id)
        chosen.append(slot)
    return chosen


def nearest(slots: Sequence[Slot], target: datetime, count: int = MAX_SLOTS) -> list[Slot]:
    """The ``count`` distinct start times closest to ``target``, in time order."""
    by_start: dict[datetime, Slot] = {}
    for slot in slots:
        by_start.setdefault(slot.start, slot)
    close = sorted(by_start.values(), key=lambda s: (abs(s.start - target), s.start))[:count]
    return sorted(close, key=lambda s: s.start)


def next_open_days(
    service: Service, staff: Sequence[StaffMember], after: date, now: datetime
) -> list[Slot]:
    """The first free slot of each of the next days (up to ``MAX_NEXT_DAYS``) within
    ``LOOKAHEAD_DAYS`` after ``after``."""
    first, last = after + timedelta(days=1), after + timedelta(days=LOOKAHEAD_DAYS)
    result = search(service, staff, first, last, now)
    firsts: dict[date, Slot] = {}
    tz = result.schedules[0].tz if result.schedules else None
    for slot in result.slots:
        day = slot.start.astimezone(tz).date()
        firsts.setdefault(day, slot)
        if len(firsts) >= MAX_NEXT_DAYS:
            break
    return list(firsts.values())


def taken(service: Service, result: Search, start: datetime, now: datetime) -> bool:
    """Whether ``start`` would be free for someone if nothing were booked: it was taken,
    not off the grid or outside hours."""
    rules = Rules.of(service)
    for schedule in result.schedules:
        unbooked = dataclasses.replace(schedule, booked=[], external=[])
        if any(
            slot.start == start
            for slot in slots_for(unbooked, rules, result.first, result.last, now)
        ):
            return True
    return False
