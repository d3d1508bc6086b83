"""Fault paths the chaos drills found in booking: lock ordering between racing bookings
and moves (no deadlock), a deadlock PostgreSQL reports anyway (409 or retried), and the
deposit link while the Stripe breaker is open (later, never dropped).

Providers are the simulator (the `providers` fixture); the database is the real one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
from django.db import connection, connections

from bookings import notifications, services
from bookings.errors import SlotTaken
from bookings.models import Appointment, AppointmentStatus, DepositStatus
from bookings.notifications import sms
from integrations import outbox
from integrations.breakers import get_breaker
from integrations.credentials import connect
from integrations.models import JobStatus, OutboxJob
from integrations.simulator import ProviderSimulator
from tenants.context import tenant_context
from tests.conftest import Salon, World, make_salon, seed_event_type
from tests.test_saga import USER, book

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL")

EVENT_TYPE = 1187


def raise_in_postgresql(sqlstate: str) -> None:
    """Make PostgreSQL itself raise an error with ``sqlstate`` in the current transaction."""
    with connection.cursor() as cursor:
        cursor.execute(
            "DO $$ BEGIN RAISE EXCEPTION 'injected' USING ERRCODE = %s; END $$", [sqlstate]
        )


def jobs(kind: str) -> Any:
    return OutboxJob.objects.filter(kind=kind)


def run_jobs(kind_prefix: str) -> list[str]:
    """What the sweeper does once the jobs are due: run each pending job now."""
    due = OutboxJob.objects.filter(kind__startswith=kind_prefix)
    due.filter(status=JobStatus.PENDING).update(next_attempt_at=None)
    return [outbox.run(pk) for pk in due.order_by("pk").values_list("pk", flat=True)]


# --- lock ordering: a move and a booking racing for one staff member's time --------------


def _wait_until_blocked(pid: int) -> None:
    """Until backend ``pid`` waits on a lock (it waits for the booking's transaction)."""
    with connection.cursor() as cursor:
        for _ in range(1000):  # bounded; each pass waits on the server, not a sleep
            cursor.execute(
                "SELECT wait_event_type FROM pg_stat_activity, pg_sleep(0.01) WHERE pid = %s",
                [pid],
            )
            row = cursor.fetchone()
            if row and row[0] == "Lock":
                return
    raise AssertionError(f"backend {pid} never waited on a lock")


@pytest.mark.django_db(transaction=True)
def test_a_move_racing_a_booking_into_the_same_time_is_409_without_a_deadlock(
    world: World,
) -> None:
    """The move locks its appointment; the booking's deferred foreign keys take FOR KEY
    SHARE on the staff member at COMMIT. Had the move locked the staff row too (FOR
    UPDATE), each would wait for the other: PostgreSQL's deadlock detector (40P01)."""
    salon = make_salon(world.a)
    with tenant_context(salon.company):
        moving = services.book_appointment(
            service=salon.service,
            staff=salon.staff,
            start=salon.at(14),
            customer=salon.customer,
            actor=USER,
        )
    inserted, go, mover_ready = threading.Event(), threading.Event(), threading.Event()
    mover_pid: list[int] = []
    outcomes: dict[str, Any] = {}
    verdicts: list[str | None] = []  # what PostgreSQL said to the move, before mapping
    real_booked, real_sqlstate = notifications.booked, services.sqlstate

    def booked_then_hold(appointment: Appointment) -> None:
        real_booked(appointment)
        inserted.set()  # the new row is in, uncommitted: hold it until the move waits
        assert go.wait(10)

    def sqlstate_seen(exc: Exception) -> str | None:
        verdicts.append(real_sqlstate(exc))
        return verdicts[-1]

    def booker() -> None:
        try:
            with tenant_context(salon.company):
                outcomes["booking"] = book(salon, hour=10)
        except Exception as exc:
            outcomes["booking"] = exc
        finally:
            connections.close_all()

    def mover() -> None:
        try:
            assert inserted.wait(10)
            with tenant_context(salon.company):
                connection.ensure_connection()
                assert connection.connection is not None
                mover_pid.append(connection.connection.info.backend_pid)
                mover_ready.set()
                outcomes["move"] = services.reschedule_appointment(
                    moving, start=salon.at(10), actor=USER
                )
        except Exception as exc:
            outcomes["move"] = exc
        finally:
            mover_ready.set()
            connections.close_all()

    with (
        mock.patch.object(notifications, "booked", booked_then_hold),
        mock.patch.object(services, "sqlstate", sqlstate_seen),
    ):
        threads = [threading.Thread(target=booker), threading.Thread(target=mover)]
        for thread in threads:
            thread.start()
        try:
            assert mover_ready.wait(10)
            assert mover_pid
            _wait_until_blocked(mover_pid[0])
        finally:
            go.set()
            for thread in threads:
                thread.join(30)

    assert isinstance(outcomes["booking"], Appointment), outcomes["booking"]
    assert isinstance(outcomes["move"], SlotTaken), outcomes["move"]
    assert "40P01" not in verdicts
    assert verdicts
    assert set(verdicts) <= {"23P01", "55P03"}
    with tenant_context(salon.company):
        active = Appointment.objects.filter(staff=salon.staff, status__in=["pending", "confirmed"])
        assert sorted((a.pk, a.start) for a in active) == sorted(
            [(moving.pk, salon.at(14)), (outcomes["booking"].pk, salon.at(10))]
        )


# --- a deadlock PostgreSQL reports anyway ------------------------------------------------


def test_a_booking_aborted_by_a_deadlock_is_slot_taken(salon: Salon) -> None:
    def booked_then_deadlock(appointment: Appointment) -> None:
        raise_in_postgresql("40P01")

    with (
        tenant_context(salon.company),
        mock.patch.object(notifications, "booked", booked_then_deadlock),
        pytest.raises(SlotTaken),
    ):
        book(salon)
    with tenant_context(salon.company):
        assert not Appointment.objects.filter(start=salon.at(10)).exists()


@pytest.fixture
def calendar(providers: ProviderSimulator, settings: Any, salon: Salon) -> Iterator[Salon]:
    settings.BREAKERS = {"default": {"min_calls": 50}}
    seed_event_type(providers, EVENT_TYPE, "Cut")
    with tenant_context(salon.company):
        OutboxJob.objects.all().delete()  # the world's sample row
        connect("calcom", "cal_live_salon")
        salon.service.calcom_event_type_id = EVENT_TYPE
        salon.service.save()
        yield salon


def test_a_confirm_aborted_by_a_deadlock_is_rolled_back_whole_and_retried(
    calendar: Salon, providers: ProviderSimulator
) -> None:
    """Two bookings racing for one time can each wait on the other's exclusion check
    inside one statement; PostgreSQL then aborts one. Raised here at the end of the
    confirm's transaction, after its history row, which must not survive."""
    real_record = services.record_history
    calls: list[str] = []

    def record_then_deadlock_once(appointment: Appointment, action: str, *a: Any, **k: Any) -> None:
        real_record(appointment, action, *a, **k)
        calls.append(action)
        if len(calls) == 1:
            raise_in_postgresql("40P01")

    with mock.patch.object(services, "record_history", record_then_deadlock_once):
        appointment = book(calendar)

    assert calls == ["calendar_synced", "calendar_synced"]  # once aborted, once for good
    appointment.refresh_from_db()
    assert (appointment.status, appointment.calendar_sync) == ("confirmed", "synced")
    with providers.lock:
        accepted = [
            b["uid"]
            for b in providers.state["calcom"]["bookings"].values()
            if b["status"] == "accepted"
        ]
    assert accepted == [appointment.calcom_uid]
    history = list(appointment.history.values_list("action", flat=True))
    assert history == ["created", "calendar_synced"]
    assert jobs("notify.confirmed").count() == 1
    assert jobs("calendar.create").get().status == JobStatus.DONE


# --- the deposit link while the Stripe breaker is open ----------------------------------


@pytest.fixture
def deposit(providers: ProviderSimulator, settings: Any, salon: Salon) -> Iterator[Salon]:
    """Stripe connected, a 20 EUR deposit on the service, SMS kept in memory."""
    settings.BREAKERS = {"default": {"min_calls": 50}}
    settings.SMS_BACKEND = "bookings.notifications.sms.MemorySmsChannel"
    sms.outbox.clear()
    with tenant_context(salon.company):
        OutboxJob.objects.all().delete()  # the world's sample row
        connect("stripe", "sk_test_salon")
        salon.service.price, salon.service.deposit = Decimal("40"), Decimal("20")
        salon.service.save()
        try:
            yield salon
        finally:
            get_breaker("stripe").force("reset")
            sms.outbox.clear()


def test_a_booking_while_the_stripe_breaker_is_open_gets_its_deposit_link_later(
    deposit: Salon, providers: ProviderSimulator
) -> None:
    get_breaker("stripe").force("open")
    appointment = book(deposit)

    # Booked and holding the slot, pending its deposit; nothing was sent to Stripe.
    appointment.refresh_from_db()
    assert (appointment.status, appointment.deposit_status) == (
        AppointmentStatus.PENDING,
        DepositStatus.REQUIRED,
    )
    assert appointment.stripe_checkout_session_id == ""
    assert providers.requests("stripe") == []
    # The Checkout Session is owed, not forgotten: a job waits for the breaker.
    assert jobs("deposit.checkout").get().status == JobStatus.PENDING
    assert run_jobs("deposit.") == [JobStatus.PENDING]
    assert "breaker open" in jobs("deposit.checkout").get().last_error
    # The customer's message waits too, rather than going out without the link.
    assert run_jobs("notify.") == [JobStatus.PENDING]
    assert sms.outbox == []

    get_breaker("stripe").force("reset")
    assert run_jobs("deposit.") == [JobStatus.DONE]
    appointment.refresh_from_db()
    assert appointment.stripe_checkout_session_id
    assert appointment.deposit_checkout_url
    assert run_jobs("notify.") == [JobStatus.DONE]
    [message] = sms.outbox
    assert message.body.endswith(appointment.deposit_checkout_url)
    sessions = providers.state["stripe"]["checkout_sessions"]
    assert list(sessions) == [appointment.stripe_checkout_session_id]  # one session only


def test_the_message_makes_the_link_itself_once_the_breaker_closes(
    deposit: Salon, providers: ProviderSimulator
) -> None:
    # The notification's retry can come before the deposit job's: same session either way.
    get_breaker("stripe").force("open")
    appointment = book(deposit)
    assert run_jobs("notify.") == [JobStatus.PENDING]
    get_breaker("stripe").force("reset")
    assert run_jobs("notify.") == [JobStatus.DONE]
    appointment.refresh_from_db()
    [message] = sms.outbox
    assert appointment.deposit_checkout_url
    assert message.body.endswith(appointment.deposit_checkout_url)
    assert run_jobs("deposit.") == [JobStatus.DONE]  # finds the session made
    sessions = providers.state["stripe"]["checkout_sessions"]
    assert list(sessions) == [appointment.stripe_checkout_session_id]
