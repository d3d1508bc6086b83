"""Free slots: working hours minus breaks, time off, closures and active appointments,
within the service's booking rules, stepped by its slot interval.

The computation is a pure function over plain data (``StaffSchedule``) so it can be
property-tested; ``find_slots`` loads that data in a constant number of queries.
Times are aware datetimes; shifts are wall-clock times in the branch's time zone.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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

# Busy time from outside our database (Cal.com), per staff id: ``find_slots(extra_busy=...)``
# calls it once with the staff members and days it is about to load.
ExtraBusy = Callable[
    [Sequence[StaffMember], date, date], Mapping[int, Sequence[tuple[datetime, datetime]]]
]


@dataclass(frozen=True, slots=True)
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
    external: list[tuple[datetime, datetime]] = field(default_factory=list)  # calendar busy


def local_instant(day: date, wall: time, tz: ZoneInfo) -> datetime:
    """The first instant (in UTC) at which a wall clock in ``tz`` shows ``wall`` or later
    on ``day``.

    An ambiguous wall time (autumn) is its first occurrence. A wall time inside a spring
    gap never shows; the clock jumps past it at the transition, which is the answer.
    UTC because arithmetic on datetimes sharing a ``ZoneInfo`` is wall-clock arithmetic:
    ``+ timedelta(minutes=30)`` across a DST change would not be thirty real minutes.
    """
    local = datetime.combine(day, wall, tzinfo=tz)
    instant = local.astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) == local.replace(tzinfo=None):
        return instant
    # In a gap: the offset changes between the two readings of `wall` (fold=1 is before
    # the transition, fold=0 after it); find the first second of the new offset.
    low, high = local.replace(fold=1).astimezone(UTC), instant
    new_offset = high.astimezone(tz).utcoffset()
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(tz).utcoffset() == new_offset:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0)


class _Busy:
    """Sorted busy intervals with an overlap test in O(log n)."""

    def __init__(self, intervals: Iterable[tuple[datetime, datetime]]) -> None:
        merged: list[tuple[datetime, datetime]] = []
        # In UTC: intervals in one ZoneInfo would sort by wall clock (wrong on fall-back).
        utc = sorted((start.astimezone(UTC), end.astimezone(UTC)) for start, end in intervals)
        for start, end in utc:
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
    """Yield the free slots of one staff member for local days ``first_day..last_day``,
    in time order, each instant once (even if shifts overlap)."""
    now = now.astimezone(UTC)  # absolute arithmetic from here on
    earliest, latest = now + rules.min_notice, now + rules.horizon
    busy = _Busy([*schedule.time_off, *schedule.booked, *schedule.external])
    shifts_by_day: dict[int, list[Shift]] = defaultdict(list)
    for shift in schedule.shifts:
        shifts_by_day[shift.weekday].append(shift)

    day = first_day
    while day <= last_day:
        if day not in schedule.closed_days:
            starts: set[datetime] = set()
            for shift in shifts_by_day.get(day.weekday(), []):
                for part_start, part_end in shift.parts():
                    opens = local_instant(day, part_start, schedule.tz)
                    closes = local_instant(day, part_end, schedule.tz)
                    start = opens
                    while start + rules.duration <= closes:
                        end = start + rules.duration
                        if earliest <= start <= latest and not busy.overlaps(
                            start, end + rules.buffer
                        ):
                            starts.add(start)
                        start += rules.interval
            for start in sorted(starts):
                yield Slot(start=start, staff_id=schedule.staff_id, end=start + rules.duration)
        day += timedelta(days=1)


def load_schedules(
    staff: Sequence[StaffMember],
    first_day: date,
    last_day: date,
    *,
    ignore_appointment: int | None = None,
    extra_busy: ExtraBusy | None = None,
) -> list[StaffSchedule]:
    """Load the schedules of ``staff`` (with ``branch`` selected) in four queries, plus
    whatever ``extra_busy`` needs (one credentials lookup when no calendar is connected)."""
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

    for staff_id, *shift in WorkingHours.objects.filter(staff_id__in=staff_ids).values_list(
        "staff_id", "weekday", "start", "end", "break_start", "break_end"
    ):
        schedules[staff_id].shifts.append(Shift(*shift))
    for staff_id, start, end in TimeOff.objects.filter(
        staff_id__in=staff_ids, start__lt=window_end, end__gt=window_start
    ).values_list("staff_id", "start", "end"):
        schedules[staff_id].time_off.append((start, end))
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
    for branch_id, closed_from, closed_to in Closure.objects.filter(
        branch_id__in=list(branch_staff), start_date__lte=last_day, end_date__gte=first_day
    ).values_list("branch_id", "start_date", "end_date"):
        closed = _days(closed_from, closed_to)
        for staff_id in branch_staff[branch_id]:
            schedules[staff_id].closed_days |= closed
    if extra_busy is not None:
        for staff_id, spans in extra_busy(staff, first_day, last_day).items():
            if staff_id in schedules:
                schedules[staff_id].external.extend(spans)
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
    extra_busy: ExtraBusy | None = None,
) -> list[Slot]:
    """Free slots of ``service`` on local days ``first_day..last_day``, sorted by time;
    ``extra_busy`` adds busy time from outside the database (the company's calendar)."""
    now = now or timezone.now()
    staff = bookable_staff(service, staff_id)
    rules = Rules.of(service)
    slots = [
        slot
        for schedule in load_schedules(
            staff,
            first_day,
            last_day,
            ignore_appointment=ignore_appointment,
            extra_busy=extra_busy,
        )
        for slot in slots_for(schedule, rules, first_day, last_day, now)
    ]
    slots.sort(key=_by_time)  # a key, not Slot.__lt__: 20x fewer Python-level comparisons
    return slots


def _by_time(slot: Slot) -> tuple[datetime, int]:
    return (slot.start, slot.staff_id)
