"""The scenarios: what each requests, what its Lua script needs, and its probe."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, date, datetime, timedelta
from datetime import time as wall_time
from typing import Any
from zoneinfo import ZoneInfo

from bench import webhook
from bench.server import fetch, http_status
from bench.wrk import Scenario

AVAILABILITY_DAYS = 30
# Bookings start after the availability days (so availability answers the same however
# much was booked before it) and stay inside the service's 366-day horizon.
BOOKING_FIRST_DAY = AVAILABILITY_DAYS + 1
BOOKING_DAYS = 330
LIST_PAGE_SIZE = 50
LIST_WINDOW_DAYS = 30  # a month view


def berlin_days(seed: dict[str, Any]) -> tuple[ZoneInfo, date]:
    tz = ZoneInfo(seed["branch"]["timezone"])
    return tz, datetime.now(tz).date() + timedelta(days=1)


def offset_text(moment: datetime) -> str:
    text = moment.strftime("%z")  # +0100
    return f"{text[:3]}:{text[3:]}"


def booking_days(seed: dict[str, Any]) -> str:
    """Local midnights from BOOKING_FIRST_DAY days ahead, skipping days whose UTC offset
    changes (DST)."""
    tz, tomorrow = berlin_days(seed)
    days = []
    for n in range(BOOKING_DAYS):
        day = tomorrow + timedelta(days=BOOKING_FIRST_DAY - 1 + n)
        start = datetime.combine(day, wall_time(0), tz)
        end = datetime.combine(day, wall_time(23, 59), tz)
        if start.utcoffset() != end.utcoffset():
            continue
        offset = start.utcoffset() or timedelta(0)
        days.append(f"{int(start.timestamp())}/{int(offset.total_seconds())}/{offset_text(start)}")
    return ",".join(days)


def slots_per_day(seed: dict[str, Any]) -> int:
    """30-minute slots that fit in a 00:00-23:59 shift: 47 (23:30-00:00 doesn't)."""
    minutes = seed["service"]["duration_minutes"]
    return (23 * 60 + 59 - minutes) // minutes + 1


def list_windows(seed: dict[str, Any]) -> str:
    """``<start_after>/<start_before>`` pairs (UTC, ``Z``): LIST_WINDOW_DAYS local days
    starting on each day of the seeded appointments' span that has a full window."""
    tz, first = berlin_days(seed)
    span = seed["appointments"]["days"]

    def utc(day: date) -> str:
        moment = datetime.combine(day, wall_time(0), tz).astimezone(UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    starts = (first + timedelta(days=n) for n in range(max(1, span - LIST_WINDOW_DAYS)))
    return ",".join(f"{utc(d)}/{utc(d + timedelta(days=LIST_WINDOW_DAYS))}" for d in starts)


def scenarios(seed: dict[str, Any]) -> list[Scenario]:
    _, first = berlin_days(seed)
    service = str(seed["service"]["id"])
    dates = [(first + timedelta(days=n)).isoformat() for n in range(AVAILABILITY_DAYS)]
    common = {"BENCH_TOKEN": seed["api_token"], "BENCH_SERVICE_ID": service}
    booking_env = {
        **common,
        "BENCH_STAFF": ",".join(str(pk) for pk in seed["staff"]),
        "BENCH_DAYS": booking_days(seed),
        "BENCH_SLOTS_PER_DAY": str(slots_per_day(seed)),
        "BENCH_SLOT_SECONDS": str(seed["service"]["duration_minutes"] * 60),
    }
    appointments = seed["appointments"]
    per_window = appointments["count"] * LIST_WINDOW_DAYS // appointments["days"]
    return [
        Scenario("health", "GET", "/health/live", "health.lua", "bare view: the ceiling"),
        Scenario(
            "availability",
            "GET",
            "/api/v1/availability/",
            "availability.lua",
            f"one day of {len(seed['staff'])} staff, days over the next {AVAILABILITY_DAYS}",
            {**common, "BENCH_DATES": ",".join(dates)},
        ),
        Scenario(
            "list",
            "GET",
            "/api/v1/appointments/",
            "list.lua",
            f"first page ({LIST_PAGE_SIZE}) of a {LIST_WINDOW_DAYS}-day window "
            f"(~{per_window} of {appointments['count']} appointments), windows over a year",
            {
                "BENCH_TOKEN": seed["api_token"],
                "BENCH_PAGE_SIZE": str(LIST_PAGE_SIZE),
                "BENCH_WINDOWS": list_windows(seed),
            },
        ),
        Scenario(
            "booking",
            "POST",
            "/api/v1/appointments/",
            "booking.lua",
            "book a distinct free (staff, slot) each request",
            booking_env,
        ),
        Scenario(
            "webhook",
            "POST",
            seed["webhook"]["path"],
            "webhook.lua",
            f"signed Stripe {webhook.EVENT_TYPE}, a new event id each; stored and queued, "
            "no worker consuming",
        ),
    ]


def api_request(
    base_url: str, method: str, path: str, token: str, body: dict[str, Any] | None = None
) -> tuple[int | None, str]:
    """One request with the token; (status, first 300 characters of the body)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 -- loopback
        f"{base_url}{path}",
        data=data,
        method=method,
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
    )
    return fetch(request)


def probe(
    base_url: str, scenario: Scenario, seed: dict[str, Any], number: int = 0
) -> tuple[int | None, str]:
    """One request before the load, to tell 'not built yet' from a slow endpoint.

    The booking probe takes a slot on the last bookable day, which the load never
    reaches, so it can't collide with the scenario's own bookings; probes that share
    a database take different staff (``number``)."""
    token = seed["api_token"]
    if scenario.name == "availability":
        first = scenario.env["BENCH_DATES"].split(",", 1)[0]
        path = f"{scenario.path}?service={seed['service']['id']}&date={first}"
        return api_request(base_url, "GET", path, token)
    if scenario.name == "list":
        after, before = scenario.env["BENCH_WINDOWS"].split(",", 1)[0].split("/")
        query = f"page_size={LIST_PAGE_SIZE}&start_after={after}&start_before={before}"
        return api_request(base_url, "GET", f"{scenario.path}?{query}", token)
    if scenario.name in ("webhook", "observability"):
        return webhook.probe(base_url, seed)
    if scenario.name == "booking":
        epoch, _, _ = scenario.env["BENCH_DAYS"].rsplit(",", 1)[-1].split("/")
        tz = ZoneInfo(seed["branch"]["timezone"])
        start = datetime.fromtimestamp(int(epoch) + 12 * 3600, tz).isoformat()
        body = {
            "service": seed["service"]["id"],
            "staff": seed["staff"][number % len(seed["staff"])],
            "start": start,
            "customer": {"name": "Bench Probe", "phone": f"+491519999{number:04d}"},
        }
        return api_request(base_url, "POST", scenario.path, token, body)
    return http_status(f"{base_url}{scenario.path}"), ""
