"""Cal.com busy times per staff member and branch-local day, cached briefly.

One Cal.com request per staff member and lookup (the whole range of days that isn't
cached), never one per slot. Fresh entries live ``FRESH_SECONDS`` under a per-staff
version token; an appointment change replaces the token (``invalidate_staff``), so a
fetch that raced the change writes under the old token and is never read. Every fetch
also writes a stale copy (``STALE_SECONDS``) that is served, marked stale, while the
breaker is open or Cal.com fails; with no copy at all nothing is subtracted (stale).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from django.conf import settings
from django.core.cache import cache

from bookings.availability import local_instant
from bookings.models import StaffMember
from integrations.calendar import metrics
from integrations.clients.calcom import CalcomClient
from integrations.credentials import Credentials, credentials_for
from integrations.deadline import Deadline
from integrations.errors import IntegrationError
from tenants.cache import tenant_key
from tenants.context import tenant_context

log = structlog.get_logger(__name__)

Interval = tuple[datetime, datetime]
FRESH_SECONDS = 60
STALE_SECONDS = 24 * 60 * 60
VERSION_SECONDS = 24 * 60 * 60
DEADLINE_SECONDS = 2.0  # all Cal.com fetches of one availability lookup together
MAX_PARALLEL_FETCHES = 8


class CalendarState(StrEnum):
    FRESH = "fresh"  # Cal.com connected and answered (now or within FRESH_SECONDS)
    STALE = "stale"  # Cal.com unavailable: the last known busy times, or none
    OFF = "off"  # the company has no Cal.com connected


@dataclass(slots=True)
class BusyTimes:
    busy: dict[int, list[Interval]] = field(default_factory=dict)
    state: CalendarState = CalendarState.FRESH


@dataclass(slots=True)
class CalendarBusy:
    """``extra_busy`` for ``find_slots``: the bound company's Cal.com busy times per staff
    id; ``state`` says afterwards how fresh the answer was."""

    state: CalendarState = CalendarState.OFF

    def __call__(
        self, staff: Sequence[StaffMember], first_day: date, last_day: date
    ) -> Mapping[int, Sequence[Interval]]:
        credentials = credentials_for("calcom")
        if credentials is None:
            self.state = CalendarState.OFF
            return {}
        result = busy_times(credentials, staff, first_day, last_day)
        self.state = result.state
        return result.busy


# -- cache keys ---------------------------------------------------------------------------
def _version_key(staff_id: int) -> str:
    return tenant_key("calbusy", "v", staff_id)


def _fresh_key(staff_id: int, version: str, day: date) -> str:
    return tenant_key("calbusy", staff_id, version, day.isoformat())


def _stale_key(staff_id: int, day: date) -> str:
    return tenant_key("calbusy", "stale", staff_id, day.isoformat())


def invalidate_staff(company_id: int, staff_ids: Sequence[int]) -> None:
    """Forget the fresh busy times of these staff members (the stale copies stay)."""
    if not staff_ids:
        return
    with tenant_context(company_id):
        token = uuid.uuid4().hex
        cache.set_many({_version_key(pk): token for pk in staff_ids}, VERSION_SECONDS)


# -- lookup -------------------------------------------------------------------------------
def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _encode(intervals: list[Interval]) -> list[tuple[float, float]]:
    return [(start.timestamp(), end.timestamp()) for start, end in intervals]


def _decode(value: Any) -> list[Interval]:
    return [
        (datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC))
        for start, end in value
    ]


def _fetch(
    client: CalcomClient, member: StaffMember, days: list[date]
) -> dict[date, list[Interval]]:
    """One request: the member's busy times over ``days`` (consecutive), split per local day."""
    tz = ZoneInfo(member.branch.timezone)
    bounds = [local_instant(day, time.min, tz) for day in [*days, days[-1] + timedelta(days=1)]]
    spans = client.busy_times(bounds[0], bounds[-1], user_id=member.calcom_user_id)
    per_day: dict[date, list[Interval]] = {day: [] for day in days}
    for start, end in spans:
        for day, day_start, day_end in zip(days, bounds, bounds[1:], strict=False):
            if start < day_end and end > day_start:
                per_day[day].append((start.astimezone(UTC), end.astimezone(UTC)))
    return per_day


def _fetch_all(
    client: CalcomClient, members: Sequence[StaffMember], missing: dict[int, list[date]]
) -> dict[int, dict[date, list[Interval]]]:
    """Fetch every member's missing days at once (one request each, in parallel), so a
    cold lookup costs one Cal.com round trip, not one per staff member. A member whose
    fetch fails is left out (served stale); the breaker stops the rest early."""
    if not members:
        return {}

    def one(member: StaffMember) -> tuple[int, dict[date, list[Interval]] | None]:
        span = _days(missing[member.pk][0], missing[member.pk][-1])
        try:
            return member.pk, _fetch(client, member, span)
        except IntegrationError as exc:
            log.warning("calendar.busy_unavailable", error=str(exc), kind=exc.kind)
            return member.pk, None

    if len(members) == 1:
        pairs = [one(members[0])]
    else:
        # Plain threads: no tenant context and no database in them, only HTTP.
        with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_FETCHES, len(members))) as pool:
            pairs = list(pool.map(one, members))
    return {pk: got for pk, got in pairs if got is not None}


def busy_times(
    credentials: Credentials,
    staff: Sequence[StaffMember],
    first_day: date,
    last_day: date,
    *,
    deadline: Deadline | None = None,
) -> BusyTimes:
    """Busy times of ``staff`` (with ``branch`` selected) on local days ``first..last``."""
    members = [member for member in staff if member.calcom_user_id]
    result = BusyTimes()
    if not members:
        return result
    days = _days(first_day, last_day)
    versions = cache.get_many([_version_key(m.pk) for m in members])
    keys = {
        (m.pk, day): _fresh_key(m.pk, str(versions.get(_version_key(m.pk), "0")), day)
        for m in members
        for day in days
    }
    cached = cache.get_many(list(keys.values()))
    timeout = float(getattr(settings, "CALENDAR_BUSY_DEADLINE_SECONDS", DEADLINE_SECONDS))
    client = CalcomClient(credentials, deadline or Deadline.after(timeout))
    missing: dict[int, list[date]] = {}
    for member in members:
        busy = result.busy.setdefault(member.pk, [])
        absent = [day for day in days if keys[(member.pk, day)] not in cached]
        busy.extend(
            interval
            for day in days
            if day not in absent
            for interval in _decode(cached[keys[(member.pk, day)]])
        )
        if absent:
            missing[member.pk] = absent
        else:
            metrics.availability_cache.labels("hit").inc()
    fetched = _fetch_all(client, [m for m in members if m.pk in missing], missing)
    for member in members:
        if member.pk not in missing:
            continue
        absent, busy = missing[member.pk], result.busy[member.pk]
        got = fetched.get(member.pk)
        if got is not None:
            metrics.availability_cache.labels("miss").inc()
            encoded = {day: _encode(spans) for day, spans in got.items()}
            cache.set_many(
                {keys[(member.pk, day)]: value for day, value in encoded.items()}, FRESH_SECONDS
            )
            cache.set_many(
                {_stale_key(member.pk, day): value for day, value in encoded.items()},
                STALE_SECONDS,
            )
            for day in absent:
                busy.extend(got[day])
            continue
        metrics.availability_cache.labels("stale").inc()
        result.state = CalendarState.STALE
        stale = cache.get_many([_stale_key(member.pk, day) for day in absent])
        for value in stale.values():
            busy.extend(_decode(value))
    return result
