"""Cal.com busy times in availability (cached, stale while Cal.com is down) and the
reconciliation of drift, against the provider simulator."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from prometheus_client import REGISTRY
from rest_framework.test import APIClient

from askpro.celery import app
from bookings import services
from bookings.models import Appointment, AppointmentHistory, AppointmentSource, AppointmentStatus
from integrations.breakers import get_breaker
from integrations.calendar.reconcile import reconcile_company
from integrations.calendar.tasks import reconcile_calendars
from integrations.clients.calcom import Attendee, CalcomClient
from integrations.credentials import Credentials, connect
from integrations.deadline import Deadline
from integrations.simulator import ProviderSimulator
from tenants.context import tenant_context
from tests.conftest import Salon, World, make_salon, seed_event_type, token_client
from tests.factories import AppointmentFactory

ORGANIZER = 4021  # the simulator's organizer: hosts every booking it makes
OTHER_USER = 5001
EVENT_TYPE = 1187
GUEST = Attendee(name="Max Mustermann", time_zone="Europe/Berlin", phone="+4915112345678")
AVAILABILITY = "/api/v1/availability/"


@pytest.fixture
def sim(providers: ProviderSimulator, settings: Any) -> Iterator[ProviderSimulator]:
    seed_event_type(providers, EVENT_TYPE, "Haarschnitt")
    yield providers
    get_breaker("calcom").force("reset")


def _connect(salon: Salon, key: str) -> Salon:
    """Cal.com connected: Anna is the organizer there, Jonas another Cal.com user."""
    with tenant_context(salon.company):
        connect("calcom", key)
        salon.staff.calcom_user_id = ORGANIZER
        salon.staff.save()
        salon.other_staff.calcom_user_id = OTHER_USER
        salon.other_staff.save()
        salon.service.calcom_event_type_id = EVENT_TYPE
        salon.service.save()
    return salon


@pytest.fixture
def cal(salon: Salon, sim: ProviderSimulator) -> Salon:
    return _connect(salon, "cal_live_a")


@pytest.fixture
def api(world: World) -> APIClient:
    return token_client(world.owner_a)


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _busy(sim: ProviderSimulator, start: datetime, end: datetime, user_id: int) -> None:
    with sim.lock:
        sim.state["calcom"]["busy"].append(
            {"start": _utc(start), "end": _utc(end), "userId": user_id}
        )


def _availability(api: APIClient, salon: Salon) -> tuple[dict[int, list[str]], str]:
    response = api.get(AVAILABILITY, {"service": salon.service.pk, "date": salon.day.isoformat()})
    assert response.status_code == 200, response.content
    body = response.json()
    per_staff: dict[int, list[str]] = {salon.staff.pk: [], salon.other_staff.pk: []}
    for slot in body["slots"]:
        per_staff[slot["staff"]].append(slot["start"])
    return per_staff, body["calendar"]


def _busy_requests(sim: ProviderSimulator) -> list[dict[str, Any]]:
    return [r for r in sim.requests("calcom") if r["path"].endswith("/calendars/busy-times")]


def _cache_count(result: str) -> float:
    return REGISTRY.get_sample_value("askpro_availability_cache_total", {"result": result}) or 0.0


# --- availability ------------------------------------------------------------------------


def test_busy_times_are_subtracted_for_their_staff_only(
    api: APIClient, cal: Salon, sim: ProviderSimulator
) -> None:
    _busy(sim, cal.at(10), cal.at(11), ORGANIZER)
    slots, calendar = _availability(api, cal)
    assert calendar == "fresh"
    assert cal.at(10).isoformat() not in slots[cal.staff.pk]
    assert cal.at(10, 30).isoformat() not in slots[cal.staff.pk]
    assert cal.at(11).isoformat() in slots[cal.staff.pk]
    assert len(slots[cal.staff.pk]) == 14
    assert len(slots[cal.other_staff.pk]) == 16  # the busy time isn't Jonas's
    requests = _busy_requests(sim)
    assert sorted(r["query"]["userId"] for r in requests) == [str(ORGANIZER), str(OTHER_USER)]


def test_staff_without_a_calcom_user_are_not_looked_up(
    api: APIClient, cal: Salon, sim: ProviderSimulator
) -> None:
    with tenant_context(cal.company):
        cal.other_staff.calcom_user_id = None
        cal.other_staff.save()
    _availability(api, cal)
    assert [r["query"]["userId"] for r in _busy_requests(sim)] == [str(ORGANIZER)]


def test_the_second_lookup_is_a_cache_hit_until_an_appointment_changes(
    api: APIClient, cal: Salon, sim: ProviderSimulator
) -> None:
    _busy(sim, cal.at(10), cal.at(11), ORGANIZER)
    _availability(api, cal)
    assert len(_busy_requests(sim)) == 2
    hits = _cache_count("hit")

    slots, calendar = _availability(api, cal)
    assert len(_busy_requests(sim)) == 2  # nothing sent: both staff members were cached
    assert _cache_count("hit") == hits + 2
    assert (calendar, cal.at(10).isoformat() in slots[cal.staff.pk]) == ("fresh", False)

    with sim.lock:  # Anna's calendar clears; then one of her appointments changes
        sim.state["calcom"]["busy"].clear()
    with tenant_context(cal.company):
        services.book_appointment(
            service=cal.service,
            staff=cal.staff,
            start=cal.at(15),
            customer=cal.customer,
            actor=services.Actor(kind="api"),
        )
    slots, calendar = _availability(api, cal)
    requests = _busy_requests(sim)
    assert [r["query"]["userId"] for r in requests[2:]] == [str(ORGANIZER)]  # Anna's only
    assert cal.at(10).isoformat() in slots[cal.staff.pk]
    assert cal.at(15).isoformat() not in slots[cal.staff.pk]


def test_an_open_breaker_serves_the_last_known_busy_times_marked_stale(
    api: APIClient, cal: Salon, sim: ProviderSimulator
) -> None:
    _busy(sim, cal.at(10), cal.at(11), ORGANIZER)
    _availability(api, cal)  # fetched: fresh and stale copies written
    with tenant_context(cal.company):  # the fresh copies are gone (as after 60 s)
        AppointmentFactory(staff=cal.staff, service=cal.service, customer=cal.customer)
        AppointmentFactory(staff=cal.other_staff, service=cal.service, customer=cal.customer)
    sim.clear_requests()
    stale = _cache_count("stale")
    get_breaker("calcom").force("open")
    try:
        slots, calendar = _availability(api, cal)
    finally:
        get_breaker("calcom").force("reset")
    assert calendar == "stale"
    assert cal.at(10).isoformat() not in slots[cal.staff.pk]  # still subtracted
    assert len(slots[cal.other_staff.pk]) == 16
    assert sim.requests("calcom") == []  # the breaker refused without sending
    assert _cache_count("stale") >= stale + 1


def test_with_nothing_cached_an_open_breaker_subtracts_nothing_and_says_stale(
    api: APIClient, cal: Salon, sim: ProviderSimulator
) -> None:
    _busy(sim, cal.at(10), cal.at(11), ORGANIZER)
    get_breaker("calcom").force("open")
    try:
        slots, calendar = _availability(api, cal)
    finally:
        get_breaker("calcom").force("reset")
    assert calendar == "stale"
    assert cal.at(10).isoformat() in slots[cal.staff.pk]
    assert sim.requests("calcom") == []


def test_a_failing_calcom_is_stale_too(api: APIClient, cal: Salon, sim: ProviderSimulator) -> None:
    sim.set_fault("calcom", error_rate=1.0, error_status=500)
    slots, calendar = _availability(api, cal)
    assert calendar == "stale"
    assert len(slots[cal.staff.pk]) == 16
    # Both lookups run at once, each retried within the one shared deadline, then stale.
    requests = _busy_requests(sim)
    assert {r["query"]["userId"] for r in requests} == {str(ORGANIZER), str(OTHER_USER)}
    assert len(requests) <= 6


def test_a_company_without_calcom_is_off_and_costs_one_query(
    world: World, sim: ProviderSimulator
) -> None:
    salon = make_salon(world.b)
    api = token_client(world.outsider)
    with CaptureQueriesContext(connection) as queries:
        slots, calendar = _availability(api, salon)
    assert calendar == "off"
    assert len(slots[salon.staff.pk]) == 16
    assert sim.requests("calcom") == []
    assert sum("integrations_integration" in q["sql"] for q in queries.captured_queries) == 1


# --- reconciliation ----------------------------------------------------------------------


def _client(key: str) -> CalcomClient:
    return CalcomClient(Credentials("calcom", key), Deadline.after(10))


def _ours(salon: Salon, start: datetime, uid: str, staff: Any = None) -> Appointment:
    """Our appointment already synced to Cal.com booking ``uid``."""
    with tenant_context(salon.company):
        appointment = AppointmentFactory(
            staff=staff or salon.staff,
            service=salon.service,
            customer=salon.customer,
            start=start,
            end=start + timedelta(minutes=30),
            busy_until=start + timedelta(minutes=30),
            calcom_uid=uid,
            source=AppointmentSource.PHONE,
        )
    assert isinstance(appointment, Appointment)
    return appointment


def _synced(salon: Salon, key: str, hour: int) -> Appointment:
    booking = _client(key).create_booking(
        event_type_id=EVENT_TYPE, start=salon.at(hour), attendee=GUEST, metadata={}
    )
    return _ours(salon, salon.at(hour), booking["uid"])


def _state(salon: Salon) -> list[tuple[Any, ...]]:
    with tenant_context(salon.company):
        return list(
            Appointment.objects.order_by("pk").values_list(
                "pk", "calcom_uid", "status", "start", "staff_id", "source"
            )
        )


@pytest.fixture
def drift(cal: Salon, world: World, sim: ProviderSimulator) -> dict[str, Any]:
    """Company a: four kinds of drift. Company b: its own Cal.com account, in sync."""
    cancelled = _synced(cal, "cal_live_a", 10)
    moved = _synced(cal, "cal_live_a", 12)
    missing = _ours(cal, cal.at(16), "uid-cal-never-heard-of")
    sim.calcom_cancel_silently(str(cancelled.calcom_uid), "changed my mind")
    with sim.silenced("calcom"):
        new = _client("cal_live_a").reschedule_booking(str(moved.calcom_uid), cal.at(14))
    direct = _client("cal_live_a").create_booking(
        event_type_id=EVENT_TYPE, start=cal.at(15), attendee=GUEST, metadata={}
    )
    other = _connect(make_salon(world.b), "cal_live_b")
    in_sync = _synced(other, "cal_live_b", 10)
    return {
        "cancelled": cancelled,
        "moved": moved,
        "new_uid": new["uid"],
        "missing": missing,
        "direct_uid": direct["uid"],
        "other": other,
        "in_sync": in_sync,
    }


def test_reconciliation_repairs_drift_once(cal: Salon, drift: dict[str, Any]) -> None:
    other_before = _state(drift["other"])
    summary = reconcile_company(cal.company.pk)
    assert (summary.cancelled, summary.moved, summary.created) == (1, 1, 1)
    assert (summary.missing_at_calcom, summary.failed, summary.error) == (1, 0, "")

    with tenant_context(cal.company):
        cancelled = Appointment.objects.get(pk=drift["cancelled"].pk)
        assert cancelled.status == AppointmentStatus.CANCELLED
        assert cancelled.cancellation_reason == "changed my mind"
        history = AppointmentHistory.objects.filter(appointment=cancelled, action="cancelled")
        assert [h.actor for h in history] == ["calendar"]
        moved = Appointment.objects.get(pk=drift["moved"].pk)
        assert (moved.start, moved.calcom_uid, moved.status) == (
            cal.at(14),
            drift["new_uid"],
            AppointmentStatus.CONFIRMED,
        )
        created = Appointment.objects.get(calcom_uid=drift["direct_uid"])
        assert (created.start, created.staff_id, created.service_id, created.source) == (
            cal.at(15),
            cal.staff.pk,
            cal.service.pk,
            AppointmentSource.CALENDAR,
        )
        assert created.customer.phone == "+4915112345678"
        missing = Appointment.objects.get(pk=drift["missing"].pk)
        assert missing.status == AppointmentStatus.CONFIRMED  # reported, never deleted

    after_first = _state(cal)
    again = reconcile_company(cal.company.pk)
    assert (again.changes, again.failed) == (0, 0)
    assert again.missing_at_calcom == 1
    assert _state(cal) == after_first
    assert _state(drift["other"]) == other_before  # the other company untouched


def test_the_beat_task_reconciles_every_connected_company_in_its_own_tenant(
    cal: Salon, drift: dict[str, Any]
) -> None:
    other_before = _state(drift["other"])
    assert app.amqp.router.route({}, "integrations.calendar.reconcile_company")["queue"].name == (
        "integrations"
    )
    eager, app.conf.task_always_eager = app.conf.task_always_eager, True
    try:
        assert reconcile_calendars.delay().get() == 2
    finally:
        app.conf.task_always_eager = eager
    with tenant_context(cal.company):
        assert Appointment.objects.get(pk=drift["cancelled"].pk).status == "cancelled"
    with tenant_context(drift["other"].company):  # b's in-sync booking stays; a's not copied
        assert not Appointment.objects.filter(calcom_uid=drift["direct_uid"]).exists()
    assert _state(drift["other"]) == other_before


def test_the_command_prints_a_summary(cal: Salon, drift: dict[str, Any]) -> None:
    out = StringIO()
    call_command("reconcile_calendar", "--company", cal.company.slug, stdout=out)
    assert out.getvalue().strip() == (
        f"{cal.company.slug}: 4 Cal.com bookings checked; created 1, linked 0, moved 1, "
        "cancelled 1; unknown at Cal.com 1, refused 0"
    )
    out = StringIO()
    call_command("reconcile_calendar", "--company", cal.company.slug, "--json", stdout=out)
    assert '"moved": 0' in out.getvalue()


def test_a_company_without_calcom_is_left_alone(world: World, sim: ProviderSimulator) -> None:
    summary = reconcile_company(world.b.pk)
    assert not summary.connected
    assert sim.requests("calcom") == []
