"""Availability: working hours minus breaks, closures, time off and active appointments,
within the service's rules, stepped by its slot interval -- in the branch's time zone.

The first part goes through ``find_slots`` and the database; the second through the pure
``slots_for`` with Hypothesis. Every comparison of instants is made in UTC: two aware
datetimes sharing one ``tzinfo`` compare and subtract by their wall clocks, which is
exactly what goes wrong around a DST change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, cast
from zoneinfo import ZoneInfo

import hypothesis
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bookings.availability import (
    Rules,
    Shift,
    Slot,
    StaffSchedule,
    find_slots,
    local_instant,
    slots_for,
)
from bookings.models import AppointmentStatus, Service, StaffMember
from bookings.services import check_slot
from tenants.context import tenant_context
from tenants.models import Branch, Company
from tests.factories import (
    AppointmentFactory,
    BranchFactory,
    ClosureFactory,
    CompanyFactory,
    CustomerFactory,
    ServiceFactory,
    StaffMemberFactory,
    StaffServiceFactory,
    TimeOffFactory,
    WorkingHoursFactory,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")

NOW = datetime(2027, 3, 1, 8, 0, tzinfo=UTC)  # Monday 1 March 2027, 09:00 in Berlin
TUESDAY = date(2027, 3, 2)
WEDNESDAY = date(2027, 3, 3)
THURSDAY = date(2027, 3, 4)
FRIDAY = date(2027, 3, 5)
SUNDAY = 6
SPRING_FORWARD = date(2027, 3, 28)  # Berlin, Sunday: 02:00 CET -> 03:00 CEST
FALL_BACK = date(2027, 10, 31)  # Berlin, Sunday: 03:00 CEST -> 02:00 CET
NEW_YORK_SPRING_FORWARD = date(2027, 3, 14)  # Sunday: 02:00 EST -> 03:00 EDT
NEW_YORK_FALL_BACK = date(2027, 11, 7)  # Sunday: 02:00 EDT -> 01:00 EST

WEEKDAYS_NINE_TO_FIVE = [Shift(weekday, time(9), time(17)) for weekday in range(5)]
EVERY_DAY_NINE_TO_FIVE = [Shift(weekday, time(9), time(17)) for weekday in range(7)]


def utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def berlin(day: date, hour: int, minute: int = 0) -> datetime:
    """An unambiguous Berlin wall-clock time."""
    return datetime.combine(day, time(hour, minute), tzinfo=BERLIN)


def grid(first: str, last: str, step: int = 30, offset: str = "") -> list[str]:
    """Wall times ``first..last`` (inclusive) every ``step`` minutes, e.g. "09:00+0100"."""
    start, stop = time.fromisoformat(first), time.fromisoformat(last)
    minute, end = start.hour * 60 + start.minute, stop.hour * 60 + stop.minute
    return [f"{m // 60:02d}:{m % 60:02d}{offset}" for m in range(minute, end + 1, step)]


def walls(found: Iterable[Slot], tz: ZoneInfo = BERLIN) -> list[str]:
    """Each slot's start as the wall clock in ``tz`` shows it: "09:30"."""
    return [f"{utc(slot.start).astimezone(tz):%H:%M}" for slot in found]


def clock(found: Iterable[Slot], tz: ZoneInfo = BERLIN) -> list[str]:
    """Each slot's start as the wall clock in ``tz`` shows it, with the offset: "09:30+0100"."""
    return [f"{utc(slot.start).astimezone(tz):%H:%M%z}" for slot in found]


def durations(found: Iterable[Slot]) -> set[timedelta]:
    """How long the slots last in absolute time."""
    return {utc(slot.end) - utc(slot.start) for slot in found}


def days_of(found: Iterable[Slot], tz: ZoneInfo = BERLIN) -> set[date]:
    return {utc(slot.start).astimezone(tz).date() for slot in found}


def by_day(found: Iterable[Slot], tz: ZoneInfo = BERLIN) -> dict[date, list[str]]:
    """The wall-clock starts in ``tz``, by local day."""
    days: dict[date, list[str]] = {}
    for slot in found:
        local = utc(slot.start).astimezone(tz)
        days.setdefault(local.date(), []).append(f"{local:%H:%M}")
    return days


# --- Database-backed: find_slots ------------------------------------------------------


@dataclass
class Shop:
    """One company with a Berlin branch and a 30-minute service, bound as the tenant."""

    company: Company
    branch: Branch
    service: Service


@pytest.fixture
def shop(db: Any) -> Iterator[Shop]:
    company = CompanyFactory(slug="availability", name="Availability Salon")
    with tenant_context(company):
        branch = BranchFactory(timezone="Europe/Berlin")
        service = ServiceFactory(
            duration_minutes=30,
            slot_interval_minutes=30,
            buffer_minutes=0,
            min_notice_minutes=0,
            horizon_days=366,
        )
        yield Shop(company=company, branch=branch, service=service)


def hire(
    shop: Shop,
    *,
    branch: Branch | None = None,
    shifts: Sequence[Shift] = WEEKDAYS_NINE_TO_FIVE,
    offers: bool = True,
    active: bool = True,
) -> StaffMember:
    """A staff member with weekly ``shifts`` who offers the shop's service (unless not)."""
    staff = cast(StaffMember, StaffMemberFactory(branch=branch or shop.branch, active=active))
    if offers:
        StaffServiceFactory(staff=staff, service=shop.service)
    for shift in shifts:
        WorkingHoursFactory(
            staff=staff,
            weekday=shift.weekday,
            start=shift.start,
            end=shift.end,
            break_start=shift.break_start,
            break_end=shift.break_end,
        )
    return staff


def book(
    shop: Shop,
    staff: StaffMember,
    start: datetime,
    *,
    minutes: int = 30,
    buffer: int = 0,
    status: str = AppointmentStatus.CONFIRMED,
    service: Service | None = None,
) -> None:
    end = start + timedelta(minutes=minutes)
    AppointmentFactory(
        staff=staff,
        branch=staff.branch,
        service=service or shop.service,
        start=start,
        end=end,
        busy_until=end + timedelta(minutes=buffer),
        status=status,
    )


def slots(
    shop: Shop,
    first_day: date,
    last_day: date | None = None,
    *,
    staff_id: int | None = None,
    now: datetime = NOW,
) -> list[Slot]:
    return find_slots(shop.service, first_day, last_day or first_day, staff_id=staff_id, now=now)


def test_a_plain_weekday_from_nine_to_five_gives_sixteen_half_hour_slots(shop: Shop) -> None:
    staff = hire(shop)

    found = slots(shop, WEDNESDAY)

    assert clock(found) == grid("09:00", "16:30", offset="+0100")
    assert [utc(slot.start) for slot in found] == [
        datetime(2027, 3, 3, 8, 0, tzinfo=UTC) + timedelta(minutes=30 * n) for n in range(16)
    ]
    assert durations(found) == {timedelta(minutes=30)}
    assert {slot.staff_id for slot in found} == {staff.pk}


def test_a_break_removes_exactly_its_slots(shop: Shop) -> None:
    hire(shop, shifts=[Shift(WEDNESDAY.weekday(), time(9), time(17), time(12), time(13))])

    found = slots(shop, WEDNESDAY)

    assert walls(found) == grid("09:00", "11:30") + grid("13:00", "16:30")


def test_a_closure_removes_whole_days_for_every_staff_member_of_its_branch_only(
    shop: Shop,
) -> None:
    first, second = hire(shop), hire(shop)
    elsewhere = hire(shop, branch=BranchFactory(timezone="Europe/Berlin"))
    ClosureFactory(branch=shop.branch, start_date=WEDNESDAY, end_date=THURSDAY)

    found = slots(shop, TUESDAY, FRIDAY)

    for member in (first, second):
        own = [slot for slot in found if slot.staff_id == member.pk]
        assert days_of(own) == {TUESDAY, FRIDAY}  # the closure's first and last day are out
        assert len(own) == 2 * 16
    other = [slot for slot in found if slot.staff_id == elsewhere.pk]
    assert days_of(other) == {TUESDAY, WEDNESDAY, THURSDAY, FRIDAY}
    assert len(other) == 4 * 16


def test_a_closure_covers_the_branchs_local_date_not_the_utc_one(shop: Shop) -> None:
    evenings = [Shift(weekday, time(17), time(23)) for weekday in range(7)]  # 22:00-04:00 UTC
    staff = hire(shop, branch=BranchFactory(timezone="America/New_York"), shifts=evenings)
    ClosureFactory(branch=staff.branch, start_date=WEDNESDAY, end_date=WEDNESDAY)

    found = slots(shop, TUESDAY, THURSDAY)

    assert by_day(found, NEW_YORK) == {
        TUESDAY: grid("17:00", "22:30"),
        THURSDAY: grid("17:00", "22:30"),
    }


def test_time_off_removes_exactly_the_overlapping_slots(shop: Shop) -> None:
    staff = hire(shop)
    TimeOffFactory(staff=staff, start=berlin(WEDNESDAY, 10, 15), end=berlin(WEDNESDAY, 11, 5))
    TimeOffFactory(staff=staff, start=berlin(WEDNESDAY, 14), end=berlin(WEDNESDAY, 14, 30))
    TimeOffFactory(staff=staff, start=berlin(THURSDAY, 0), end=berlin(FRIDAY, 12))

    found = slots(shop, TUESDAY, FRIDAY)

    removed = {"10:00", "10:30", "11:00", "14:00"}  # 13:30 and 14:30 only touch 14:00-14:30
    assert by_day(found) == {
        TUESDAY: grid("09:00", "16:30"),
        WEDNESDAY: [wall for wall in grid("09:00", "16:30") if wall not in removed],
        FRIDAY: grid("12:00", "16:30"),
    }


@pytest.mark.parametrize("status", list(AppointmentStatus))
def test_only_a_pending_or_confirmed_appointment_blocks_its_slot(shop: Shop, status: str) -> None:
    staff = hire(shop)
    book(shop, staff, berlin(WEDNESDAY, 10), status=status)

    found = slots(shop, WEDNESDAY)

    blocks = status in {AppointmentStatus.PENDING, AppointmentStatus.CONFIRMED}
    expected = [wall for wall in grid("09:00", "16:30") if not (blocks and wall == "10:00")]
    assert walls(found) == expected


def test_an_appointment_blocks_its_staff_member_whatever_the_service_and_no_one_else(
    shop: Shop,
) -> None:
    booked, free = hire(shop), hire(shop)
    other_service = ServiceFactory(duration_minutes=60)
    book(shop, booked, berlin(WEDNESDAY, 10), minutes=60, service=other_service)

    found = slots(shop, WEDNESDAY)

    mine = [slot for slot in found if slot.staff_id == booked.pk]
    assert walls(mine) == [w for w in grid("09:00", "16:30") if w not in {"10:00", "10:30"}]
    assert walls(slot for slot in found if slot.staff_id == free.pk) == grid("09:00", "16:30")


def test_an_appointments_busy_until_blocks_every_slot_it_covers(shop: Shop) -> None:
    staff = hire(shop)
    book(shop, staff, berlin(WEDNESDAY, 10), minutes=30, buffer=15)  # busy 10:00-10:45

    found = slots(shop, WEDNESDAY)

    assert walls(found) == [w for w in grid("09:00", "16:30") if w not in {"10:00", "10:30"}]


def test_a_new_slots_buffer_must_not_run_into_the_next_appointment(shop: Shop) -> None:
    shop.service.buffer_minutes = 30
    shop.service.save()
    staff = hire(shop)
    book(shop, staff, berlin(WEDNESDAY, 11), minutes=30, buffer=30)  # busy 11:00-12:00

    found = slots(shop, WEDNESDAY)

    # 10:00 + 30 min + 30 min buffer ends exactly at 11:00: allowed. 10:30's buffer runs
    # into 11:00; 11:00 and 11:30 are inside the appointment's busy time; 12:00 is free.
    removed = {"10:30", "11:00", "11:30"}
    assert walls(found) == [wall for wall in grid("09:00", "16:30") if wall not in removed]


@pytest.mark.parametrize(
    ("now", "notice", "first_slot"),
    [
        (berlin(WEDNESDAY, 9), 60, "10:00"),  # exactly now + notice is still offered
        (berlin(WEDNESDAY, 9, 10), 60, "10:30"),
        (berlin(WEDNESDAY, 8), 0, "09:00"),
        (berlin(WEDNESDAY, 9, 1), 0, "09:30"),  # a slot that has started is gone
        (berlin(TUESDAY, 16), 24 * 60, "16:00"),  # a day's notice
    ],
)
def test_min_notice_hides_slots_that_start_too_soon(
    shop: Shop, now: datetime, notice: int, first_slot: str
) -> None:
    shop.service.min_notice_minutes = notice
    shop.service.save()
    hire(shop)

    found = slots(shop, WEDNESDAY, now=utc(now))

    assert walls(found) == grid(first_slot, "16:30")


def test_the_horizon_hides_slots_that_start_after_it(shop: Shop) -> None:
    shop.service.horizon_days = 2
    shop.service.save()
    hire(shop)

    found = slots(shop, NOW.date(), FRIDAY)  # NOW is Monday 09:00 Berlin

    assert by_day(found) == {
        NOW.date(): grid("09:00", "16:30"),
        TUESDAY: grid("09:00", "16:30"),
        WEDNESDAY: ["09:00"],  # exactly now + 2 days is still offered
    }


def test_an_interval_of_15_with_a_duration_of_30_starts_every_quarter_hour(shop: Shop) -> None:
    shop.service.slot_interval_minutes = 15
    shop.service.save()
    hire(shop)

    found = slots(shop, WEDNESDAY)

    assert walls(found) == grid("09:00", "16:30", step=15)
    assert len(found) == 31
    assert durations(found) == {timedelta(minutes=30)}


def test_staff_id_limits_the_slots_to_that_staff_member(shop: Shop) -> None:
    first, second = hire(shop), hire(shop)
    not_offering = hire(shop, offers=False)

    assert {slot.staff_id for slot in slots(shop, WEDNESDAY)} == {first.pk, second.pk}
    only_second = slots(shop, WEDNESDAY, staff_id=second.pk)
    assert {slot.staff_id for slot in only_second} == {second.pk}
    assert walls(only_second) == grid("09:00", "16:30")
    assert slots(shop, WEDNESDAY, staff_id=not_offering.pk) == []


def test_only_active_staff_who_offer_the_service_appear(shop: Shop) -> None:
    offering = hire(shop)
    hire(shop, active=False)
    hire(shop, offers=False)
    offers_something_else = hire(shop, offers=False)
    StaffServiceFactory(staff=offers_something_else, service=ServiceFactory())

    found = slots(shop, WEDNESDAY)

    assert {slot.staff_id for slot in found} == {offering.pk}
    assert len(found) == 16


def test_another_companys_appointments_never_affect_this_companys_slots(shop: Shop) -> None:
    staff = hire(shop)
    other = CompanyFactory(slug="other", name="Other Salon")
    with tenant_context(other):
        their_service = ServiceFactory(name=shop.service.name, duration_minutes=30)
        their_staff = StaffMemberFactory(branch=BranchFactory(timezone="Europe/Berlin"))
        StaffServiceFactory(staff=their_staff, service=their_service)
        WorkingHoursFactory(staff=their_staff, weekday=WEDNESDAY.weekday())
        AppointmentFactory(
            staff=their_staff,
            service=their_service,
            start=berlin(WEDNESDAY, 10),
            end=berlin(WEDNESDAY, 10, 30),
            busy_until=berlin(WEDNESDAY, 10, 30),
        )
        ClosureFactory(branch=their_staff.branch, start_date=WEDNESDAY, end_date=WEDNESDAY)
        CustomerFactory()
    # A row of the other company pointing at this company's staff can't exist: the
    # database refuses it (tests/test_rls.py, composite foreign keys).
    found = slots(shop, WEDNESDAY)

    assert {slot.staff_id for slot in found} == {staff.pk}
    assert walls(found) == grid("09:00", "16:30")


# --- DST and the branch's time zone ---------------------------------------------------


def test_spring_forward_offers_only_real_instants_each_lasting_the_duration(shop: Shop) -> None:
    hire(shop, shifts=[Shift(SUNDAY, time(1), time(5))])  # 01:00 CET .. 05:00 CEST: 3 hours

    found = slots(shop, SPRING_FORWARD)

    assert clock(found) == [
        "01:00+0100",
        "01:30+0100",
        "03:00+0200",  # 02:00 and 02:30 never happen on this day
        "03:30+0200",
        "04:00+0200",
        "04:30+0200",
    ]
    assert [utc(slot.start) for slot in found] == [
        datetime(2027, 3, 28, 0, 0, tzinfo=UTC) + timedelta(minutes=30 * n) for n in range(6)
    ]
    assert durations(found) == {timedelta(minutes=30)}


def test_fall_back_offers_the_repeated_hour_twice_with_different_offsets(shop: Shop) -> None:
    hire(shop, shifts=[Shift(SUNDAY, time(1), time(4))])  # 01:00 CEST .. 04:00 CET: 4 hours

    found = slots(shop, FALL_BACK)

    assert clock(found) == [
        "01:00+0200",
        "01:30+0200",
        "02:00+0200",
        "02:30+0200",
        "02:00+0100",  # the clock goes back: 02:00 and 02:30 happen a second time
        "02:30+0100",
        "03:00+0100",
        "03:30+0100",
    ]
    assert [utc(slot.start) for slot in found] == [
        datetime(2027, 10, 30, 23, 0, tzinfo=UTC) + timedelta(minutes=30 * n) for n in range(8)
    ]
    assert durations(found) == {timedelta(minutes=30)}


@pytest.mark.parametrize(
    ("zone", "day", "offset"),
    [
        ("Europe/Berlin", SPRING_FORWARD, "+0200"),
        ("Europe/Berlin", FALL_BACK, "+0100"),
        ("America/New_York", NEW_YORK_SPRING_FORWARD, "-0400"),
        ("America/New_York", NEW_YORK_FALL_BACK, "-0500"),
    ],
)
def test_a_day_shift_on_a_dst_day_gives_sixteen_slots_with_the_new_offset(
    shop: Shop, zone: str, day: date, offset: str
) -> None:
    hire(shop, branch=BranchFactory(timezone=zone), shifts=EVERY_DAY_NINE_TO_FIVE)

    found = slots(shop, day)

    assert clock(found, ZoneInfo(zone)) == grid("09:00", "16:30", offset=offset)
    assert durations(found) == {timedelta(minutes=30)}


@pytest.mark.parametrize("server_zone", ["UTC", "Pacific/Auckland"])
def test_the_branchs_time_zone_decides_not_the_servers(
    shop: Shop, settings: Any, server_zone: str
) -> None:
    settings.TIME_ZONE = server_zone
    in_berlin = hire(shop)
    in_new_york = hire(shop, branch=BranchFactory(timezone="America/New_York"))

    found = slots(shop, WEDNESDAY)

    berlin_slots = [slot for slot in found if slot.staff_id == in_berlin.pk]
    new_york_slots = [slot for slot in found if slot.staff_id == in_new_york.pk]
    assert clock(new_york_slots, NEW_YORK) == grid("09:00", "16:30", offset="-0500")
    assert utc(new_york_slots[0].start) == datetime(2027, 3, 3, 14, 0, tzinfo=UTC)
    assert utc(berlin_slots[0].start) == datetime(2027, 3, 3, 8, 0, tzinfo=UTC)
    starts = [utc(slot.start) for slot in found]
    assert starts == sorted(starts)  # one list, in time order across both zones


@pytest.mark.parametrize(
    ("day", "start", "end", "first_utc", "count"),
    [
        (SPRING_FORWARD, time(1), time(5), datetime(2027, 3, 28, 0, 0, tzinfo=UTC), 6),
        (FALL_BACK, time(1), time(4), datetime(2027, 10, 30, 23, 0, tzinfo=UTC), 8),
    ],
    ids=["spring-forward", "fall-back"],
)
def test_check_slot_accepts_every_real_instant_of_a_dst_night_given_in_utc(
    shop: Shop, day: date, start: time, end: time, first_utc: datetime, count: int
) -> None:
    staff = hire(shop, shifts=[Shift(SUNDAY, start, end)])

    for n in range(count):  # the same instants the two tests above expect as slots
        check_slot(shop.service, staff, first_utc + timedelta(minutes=30 * n), now=NOW)


# --- Properties of the pure computation -----------------------------------------------

ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]


def _dst_days(zone: str) -> list[date]:
    """The days of 2026-2028 on which ``zone`` changes its UTC offset."""
    tz = ZoneInfo(zone)
    days, day = [], date(2026, 1, 1)
    while day.year <= 2028:
        tomorrow = day + timedelta(days=1)
        if datetime.combine(day, time(), tz).utcoffset() != (
            datetime.combine(tomorrow, time(), tz).utcoffset()
        ):
            days.append(day)
        day = tomorrow
    return days


# Days to start around: the zone's own DST days (Kolkata has none: Berlin's, then).
AROUND = {zone: _dst_days(zone) or _dst_days("Europe/Berlin") for zone in ZONES}
assert {day.month for days in AROUND.values() for day in days} == {3, 4, 10, 11}


@dataclass(frozen=True)
class Case:
    """One call of ``slots_for``; ``now``, time off and bookings may be in any zone."""

    schedule: StaffSchedule
    rules: Rules
    first_day: date
    last_day: date
    now: datetime

    @property
    def tz(self) -> ZoneInfo:
        return self.schedule.tz

    def offered(self) -> list[Slot]:
        return list(slots_for(self.schedule, self.rules, self.first_day, self.last_day, self.now))

    def parts_on(self, day: date) -> list[tuple[datetime, datetime]]:
        """[opens, closes] of that weekday's shift parts, as UTC instants on ``day``."""
        return [
            (utc(local_instant(day, start, self.tz)), utc(local_instant(day, end, self.tz)))
            for shift in self.schedule.shifts
            if shift.weekday == day.weekday()
            for start, end in shift.parts()
        ]

    def busy(self) -> list[tuple[datetime, datetime]]:
        return [(utc(s), utc(e)) for s, e in [*self.schedule.time_off, *self.schedule.booked]]


def _wall(minutes: int) -> time:
    return time(minutes // 60, minutes % 60)


# Anywhere in the day, or just before or after the small hours in which clocks change
# (01:00-03:00 in these zones), so that many shifts span a change.
_minute_of_day = st.one_of(
    st.integers(0, 23 * 60 + 59), st.integers(0, 100), st.integers(3 * 60, 5 * 60)
)


# Real services mostly use round numbers; those dividing an hour meet the DST hour.
_round_minutes = st.sampled_from([5, 10, 15, 20, 30, 60])


@st.composite
def _shifts_on(draw: st.DrawFn, weekday: int) -> list[Shift]:
    """One or two non-overlapping shifts on a weekday, each maybe with a break inside."""
    bounds = sorted(draw(st.lists(_minute_of_day, min_size=2, max_size=4, unique=True)))
    shifts = []
    for start, end in zip(bounds[0::2], bounds[1::2], strict=False):
        if draw(st.booleans()):
            break_start = draw(st.integers(start, end - 1))
            break_end = draw(st.integers(break_start + 1, end))
            shifts.append(
                Shift(weekday, _wall(start), _wall(end), _wall(break_start), _wall(break_end))
            )
        else:
            shifts.append(Shift(weekday, _wall(start), _wall(end)))
    return shifts


@st.composite
def _intervals(
    draw: st.DrawFn, around: datetime, days: int, shown_in: tzinfo
) -> list[tuple[datetime, datetime]]:
    """Up to four [start, end) intervals over ``days`` from ``around``, shown in a zone."""
    intervals = []
    for offset, length in draw(
        st.lists(st.tuples(st.integers(0, days * 24 * 60), st.integers(1, 600)), max_size=4)
    ):
        start = around + timedelta(minutes=offset)
        end = start + timedelta(minutes=length)
        intervals.append((start.astimezone(shown_in), end.astimezone(shown_in)))
    return intervals


@st.composite
def cases(draw: st.DrawFn) -> Case:
    tz = ZoneInfo(draw(st.sampled_from(ZONES)))
    anchor = draw(st.sampled_from(AROUND[tz.key]))
    first_day = anchor - timedelta(days=draw(st.integers(0, 4)))
    last_day = first_day + timedelta(days=draw(st.integers(0, 9)))
    days = [first_day + timedelta(days=n) for n in range((last_day - first_day).days + 1)]

    weekdays = draw(st.sets(st.integers(0, 6), max_size=3))
    if draw(st.booleans()):
        weekdays.add(SUNDAY)  # every DST change drawn here happens on a Sunday
    shifts = [shift for weekday in sorted(weekdays) for shift in draw(_shifts_on(weekday))]

    # An instant may come in UTC or in the schedule's zone: either must mean the same.
    shown_in = draw(st.sampled_from([UTC, tz]))
    around = datetime.combine(first_day, time(), tzinfo=UTC) - timedelta(days=1)
    span = len(days) + 2
    schedule = StaffSchedule(
        staff_id=7,
        tz=tz,
        shifts=shifts,
        closed_days=draw(st.sets(st.sampled_from(days), max_size=2)),
        time_off=draw(_intervals(around, span, shown_in)),
        booked=draw(_intervals(around, span, shown_in)),
    )
    rules = Rules(
        duration=timedelta(minutes=draw(st.one_of(_round_minutes, st.integers(5, 240)))),
        interval=timedelta(minutes=draw(st.one_of(_round_minutes, st.integers(5, 120)))),
        buffer=timedelta(minutes=draw(st.integers(0, 60))),
        min_notice=timedelta(minutes=draw(st.integers(0, 1440))),
        horizon=timedelta(days=draw(st.integers(1, 60))),
    )
    now = around + timedelta(minutes=draw(st.integers(-3 * 24 * 60, 2 * 24 * 60)))
    return Case(schedule, rules, first_day, last_day, now.astimezone(shown_in))


def _night(
    zone: str,
    day: date,
    *hours: tuple[time, time],
    minutes: int = 30,
    every: int = 30,
    notice: int = 0,
    now: datetime | None = None,
    booked: Sequence[tuple[datetime, datetime]] = (),
    shown_in: tzinfo = UTC,
) -> Case:
    """Shifts (wall-clock ``hours``) on a DST day; no buffer, a 30-day horizon."""
    now = now or datetime.combine(day - timedelta(days=7), time(), tzinfo=UTC)
    return Case(
        StaffSchedule(
            staff_id=7,
            tz=ZoneInfo(zone),
            shifts=[Shift(day.weekday(), start, end) for start, end in hours],
            booked=[(s.astimezone(shown_in), e.astimezone(shown_in)) for s, e in booked],
        ),
        Rules(
            duration=timedelta(minutes=minutes),
            interval=timedelta(minutes=every),
            buffer=timedelta(0),
            min_notice=timedelta(minutes=notice),
            horizon=timedelta(days=30),
        ),
        day,
        day,
        now.astimezone(shown_in),
    )


# Always tried first: the clock changes of each zone, with night shifts across them.
DST_EXAMPLES = [
    _night("Europe/Berlin", SPRING_FORWARD, (time(1), time(5))),
    _night("Europe/Berlin", FALL_BACK, (time(1), time(4))),
    _night("America/New_York", NEW_YORK_SPRING_FORWARD, (time(0, 45), time(4)), every=15),
    _night("America/New_York", NEW_YORK_FALL_BACK, (time(0, 30), time(3)), every=20),
    _night("Australia/Lord_Howe", date(2027, 4, 4), (time(1), time(3))),  # 02:00 -> 01:30
    _night("Australia/Lord_Howe", date(2027, 10, 3), (time(1), time(4))),  # 02:00 -> 02:30
    # ``now`` given in Berlin time, two hours' notice across the spring-forward gap:
    # the earliest start is 02:30 UTC (04:30 CEST), not 03:30 CEST.
    _night(
        "Europe/Berlin",
        SPRING_FORWARD,
        (time(1), time(6)),
        notice=120,
        now=datetime(2027, 3, 28, 0, 30, tzinfo=UTC),
        shown_in=BERLIN,
    ),
    # A booking given in Berlin time across the fall-back fold: 02:40 CEST .. 02:10 CET.
    _night(
        "Europe/Berlin",
        FALL_BACK,
        (time(1), time(4)),
        every=10,
        booked=[
            (datetime(2027, 10, 31, 0, 40, tzinfo=UTC), datetime(2027, 10, 31, 1, 10, tzinfo=UTC))
        ],
        shown_in=BERLIN,
    ),
    # Two bookings given in Berlin time, 02:40-02:50 CEST and then 02:10-02:20 CET: by
    # the wall clock the second comes first, by the real clock it doesn't.
    _night(
        "Europe/Berlin",
        FALL_BACK,
        (time(1), time(4)),
        minutes=5,
        every=10,
        booked=[
            (datetime(2027, 10, 31, 0, 40, tzinfo=UTC), datetime(2027, 10, 31, 0, 50, tzinfo=UTC)),
            (datetime(2027, 10, 31, 1, 10, tzinfo=UTC), datetime(2027, 10, 31, 1, 20, tzinfo=UTC)),
        ],
        shown_in=BERLIN,
    ),
    # A shift ending inside the gap (at 02:30, which never shows) and the next starting
    # right after it: however 02:30 is read, no instant twice, none out of order.
    _night(
        "Europe/Berlin",
        SPRING_FORWARD,
        (time(1), time(2, 30)),
        (time(3), time(4)),
        minutes=5,
        every=20,
    ),
]


def properties(test: Callable[[Case], None]) -> Callable[..., None]:
    """Run ``test`` on the DST examples, then on 200 generated cases."""
    for case in reversed(DST_EXAMPLES):
        test = example(case)(test)
    run = hypothesis.settings(max_examples=200, deadline=None, database=None)
    return run(given(cases())(test))


@properties
def test_every_slot_lasts_exactly_the_duration_in_absolute_time(case: Case) -> None:
    for slot in case.offered():
        assert utc(slot.end) - utc(slot.start) == case.rules.duration, slot


@properties
def test_no_slot_or_its_buffer_overlaps_time_off_or_a_booking(case: Case) -> None:
    busy = case.busy()
    for slot in case.offered():
        start = utc(slot.start)
        until = start + case.rules.duration + case.rules.buffer
        clashes = [(s, e) for s, e in busy if s < until and start < e]
        assert not clashes, (slot, clashes)


@properties
def test_every_slot_lies_within_a_shift_part_of_an_open_day_in_range(case: Case) -> None:
    for slot in case.offered():
        start = utc(slot.start)
        end = start + case.rules.duration
        day = start.astimezone(case.tz).date()
        assert case.first_day <= day <= case.last_day, slot
        parts = case.parts_on(day)
        assert any(opens <= start and end <= closes for opens, closes in parts), (slot, parts)


@properties
def test_no_slot_starts_before_the_notice_or_after_the_horizon(case: Case) -> None:
    earliest = utc(case.now) + case.rules.min_notice
    latest = utc(case.now) + case.rules.horizon
    for slot in case.offered():
        assert earliest <= utc(slot.start) <= latest, slot


@properties
def test_closed_days_have_no_slots(case: Case) -> None:
    assert not days_of(case.offered(), case.tz) & case.schedule.closed_days


@properties
def test_no_instant_is_offered_twice(case: Case) -> None:
    starts = [utc(slot.start) for slot in case.offered()]
    assert len(starts) == len(set(starts)), sorted(starts)


@properties
def test_slots_come_in_non_decreasing_start_order_within_each_day(case: Case) -> None:
    by_day: dict[date, list[datetime]] = {}
    for slot in case.offered():
        start = utc(slot.start)
        by_day.setdefault(start.astimezone(case.tz).date(), []).append(start)
    for starts in by_day.values():
        assert starts == sorted(starts), starts


@properties
def test_starts_are_whole_intervals_after_their_parts_opening_instant(case: Case) -> None:
    interval = case.rules.interval
    for slot in case.offered():
        start = utc(slot.start)
        end = start + case.rules.duration
        parts = case.parts_on(start.astimezone(case.tz).date())
        assert any(
            opens <= start and end <= closes and (start - opens) % interval == timedelta(0)
            for opens, closes in parts
        ), (slot, parts)


@properties
def test_every_free_start_on_a_parts_interval_grid_is_offered(case: Case) -> None:
    """The converse of the above: nothing that fits is left out."""
    rules, busy = case.rules, case.busy()
    earliest, latest = utc(case.now) + rules.min_notice, utc(case.now) + rules.horizon
    expected = set()
    day = case.first_day
    while day <= case.last_day:
        if day not in case.schedule.closed_days:
            for opens, closes in case.parts_on(day):
                start = opens
                while start + rules.duration <= closes:  # stepped in absolute time
                    until = start + rules.duration + rules.buffer
                    free = not any(s < until and start < e for s, e in busy)
                    if free and earliest <= start <= latest:
                        expected.add(start)
                    start += rules.interval
        day += timedelta(days=1)
    offered = {utc(slot.start) for slot in case.offered()}
    assert not expected - offered, sorted(expected - offered)
