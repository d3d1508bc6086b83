"""Free slots: working hours minus breaks, time off, closures and active appointments,
within the service's booking rules, stepped by its slot interval.

The computation is a pure function over plain data (``StaffSchedule``) so it can be
property-tested; ``find_slots`` loads that data in a constant number of queries.
Times are aware datetimes; shifts are wall-clock times in the branch's time zone.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone

from bookings.models import (
    ACTIVE_STATUSES,
    Appointment,
    Closure,
    Service,
    StaffMember,
    TimeOff,
    WorkingHours,
)

MAX_RANGE_DAYS = 31


@dataclass(frozen=True, slots=True, order=True)
class Slot:
    start: datetime
    staff_id: int
    end: datetime


@dataclass(frozen=True, slots=True)
class Rules:
    """The service's booking rules, as durations."""

    duration: timedelta
    interval: timedelta
    buffer: timedelta
    min_notice: timedelta
    horizon: timedelta

    @classmethod
    def of(cls, service: Service) -> Rules:
        return cls(
            duration=timedelta(minutes=service.duration_minutes),
            interval=timedelta(minutes=service.slot_interval_minutes),
            buffer=timedelta(minutes=service.buffer_minutes),
            min_notice=timedelta(minutes=service.min_notice_minutes),
            horizon=timedelta(days=service.horizon_days),
        )


@dataclass(frozen=True, slots=True)
class Shift:
    weekday: int
    start: time
    end: time
    break_start: time | None = None
    break_end: time | None = None

    def parts(self) -> list[tuple[time, time]]:
        if self.break_start is None or self.break_end is None:
            return [(self.start, self.end)]
        return [(self.start, self.break_start), (self.break_end, self.end)]


@dataclass(slots=True)
class StaffSchedule:
    """Everything that decides one staff member's free time over a date range."""

    staff_id: int
    tz: ZoneInfo
    shifts: list[Shift] = field(default_factory=list)
    closed_days: set[date] = field(default_factory=set)
    time_off: list[tuple[datetime, datetime]] = field(default_factory=list)  # [start, end)
    booked: list[tuple[datetime, datetime]] = field(default_factory=list)  # [start, busy_until)


def local_instant(day: date, wall: time, tz: ZoneInfo) -> datetime:
    """The instant a wall-clock time happens on ``day`` in ``tz``.

    A wall time inside a spring-forward gap doesn't exist; round-tripping through UTC
    moves it forward by the gap, as a clock on the wall would.
    """
    return datetime.combine(day, wall, tzinfo=tz).astimezone(UTC).astimezone(tz)


class _Busy:
    """Sorted busy intervals with an overlap test in O(log n)."""

    def __init__(self, intervals: Iterable[tuple[datetime, datetime]]) -> None:
        merged: list[tuple[datetime, datetime]] = []
        for start, end in sorted(intervals):
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        self._starts = [start for start, _ in merged]
        self._intervals = merged

    def overlaps(self, start: datetime, end: datetime) -> bool:
        index = bisect.bisect_left(self._starts, end)  # intervals starting before `end`
        return index > 0 and self._intervals[index - 1][1] > start


def slots_for(
    schedule: StaffSchedule, rules: Rules, first_day: date, last_day: date, now: datetime
) -> Iterator[Slot]:
    """Yield the free slots of one staff member for local days ``first_day..last_day``."""
    earliest = now + rules.min_notice
    latest = now + rules.horizon
    busy = _Busy([*schedule.time_off, *schedule.booked])
    shifts_by_day: dict[int, list[Shift]] = defaultdict(list)
    for shift in schedule.shifts:
        shifts_by_day[shift.weekday].append(shift)

    day = first_day
    while day <= last_day:
        if day not in schedule.closed_days:
            for shift in sorted(shifts_by_day.get(day.weekday(), []), key=lambda s: s.start):
                for part_start, part_end in shift.parts():
                    opens = local_instant(day, part_start, schedule.tz)
                    closes = local_instant(day, part_end, schedule.tz)
                    start = opens
                    while start + rules.duration <= closes:
                        end = start + rules.duration
                        if (
                            start >= earliest
                            and start <= latest
                            and not busy.overlaps(start, end + rules.buffer)
                        ):
                            yield Slot(start=start, staff_id=schedule.staff_id, end=end)
                        start += rules.interval
        day += timedelta(days=1)


def load_schedules(
    staff: Sequence[StaffMember],
    first_day: date,
    last_day: date,
    *,
    ignore_appointment: int | None = None,
) -> list[StaffSchedule]:
    """Load the schedules of ``staff`` (with ``branch`` selected) in four queries."""
    if not staff:
        return []
    staff_ids = [member.pk for member in staff]
    schedules = {
        member.pk: StaffSchedule(staff_id=member.pk, tz=ZoneInfo(member.branch.timezone))
        for member in staff
    }
    # Generous UTC bounds: local days can start up to 14 h either side of UTC midnight.
    window_start = datetime.combine(first_day, time.min, tzinfo=UTC) - timedelta(days=1)
    window_end = datetime.combine(last_day, time.max, tzinfo=UTC) + timedelta(days=1)

    for hours in WorkingHours.objects.filter(staff_id__in=staff_ids):
        schedules[hours.staff_id].shifts.append(
            Shift(hours.weekday, hours.start, hours.end, hours.break_start, hours.break_end)
        )
    for off in TimeOff.objects.filter(
        staff_id__in=staff_ids, start__lt=window_end, end__gt=window_start
    ).only("staff_id", "start", "end"):
        schedules[off.staff_id].time_off.append((off.start, off.end))
    appointments = Appointment.objects.filter(
        staff_id__in=staff_ids,
        status__in=ACTIVE_STATUSES,
        start__lt=window_end,
        busy_until__gt=window_start,
    )
    if ignore_appointment is not None:  # the one being moved doesn't block itself
        appointments = appointments.exclude(pk=ignore_appointment)
    for staff_id, start, busy_until in appointments.values_list("staff_id", "start", "busy_until"):
        schedules[staff_id].booked.append((start, busy_until))

    branch_staff: dict[int, list[int]] = defaultdict(list)
    for member in staff:
        branch_staff[member.branch_id].append(member.pk)
    for closure in Closure.objects.filter(
        branch_id__in=list(branch_staff), start_date__lte=last_day, end_date__gte=first_day
    ):
        closed = _days(closure.start_date, closure.end_date)
        for staff_id in branch_staff[closure.branch_id]:
            schedules[staff_id].closed_days |= closed
    return list(schedules.values())


def _days(first: date, last: date) -> set[date]:
    return {first + timedelta(days=n) for n in range((last - first).days + 1)}


def bookable_staff(service: Service, staff_id: int | None = None) -> list[StaffMember]:
    """Active staff offering ``service`` (optionally one of them), with their branch."""
    members = StaffMember.objects.filter(active=True, services=service).select_related("branch")
    if staff_id is not None:
        members = members.filter(pk=staff_id)
    return list(members.order_by("pk"))


def find_slots(
    service: Service,
    first_day: date,
    last_day: date,
    *,
    staff_id: int | None = None,
    now: datetime | None = None,
    ignore_appointment: int | None = None,
) -> list[Slot]:
    """Free slots of ``service`` on local days ``first_day..last_day``, sorted by time."""
    now = now or timezone.now()
    staff = bookable_staff(service, staff_id)
    rules = Rules.of(service)
    slots = [
        slot
        for schedule in load_schedules(
            staff, first_day, last_day, ignore_appointment=ignore_appointment
        )
        for slot in slots_for(schedule, rules, first_day, last_day, now)
    ]
    return sorted(slots)
