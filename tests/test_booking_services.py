"""Booking, cancelling, moving and closing appointments through bookings.services."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import IntegrityError, connection, connections, transaction

from bookings import services
from bookings.errors import InvalidTransition, OutsideBookingWindow, SlotTaken, SlotUnavailable
from bookings.models import Appointment, AppointmentHistory, AppointmentStatus, Customer
from tenants.context import all_tenants, tenant_context
from tests.conftest import Salon, make_salon

ACTOR = services.Actor(kind="api")


def book(salon: Salon, hour: int, minute: int = 0, **kwargs: Any) -> Appointment:
    kwargs.setdefault("staff", salon.staff)
    kwargs.setdefault("service", salon.service)
    with tenant_context(salon.company):
        return services.book_appointment(
            start=salon.at(hour, minute), customer=salon.customer, actor=ACTOR, **kwargs
        )


def test_booking_a_free_slot_confirms_it_and_records_history(salon: Salon) -> None:
    appointment = book(salon, 10)
    assert appointment.status == AppointmentStatus.CONFIRMED
    assert appointment.end - appointment.start == timedelta(minutes=30)
    with tenant_context(salon.company):
        history = list(AppointmentHistory.objects.filter(appointment=appointment))
    assert [h.action for h in history] == ["created"]
    assert history[0].actor == "api"


def test_a_service_with_a_deposit_books_as_pending(salon: Salon) -> None:
    with tenant_context(salon.company):
        salon.service.price, salon.service.deposit = 50, 10
        salon.service.save()
    assert book(salon, 10).status == AppointmentStatus.PENDING


@pytest.mark.parametrize(
    ("hour", "minute", "error"),
    [
        (8, 30, SlotUnavailable),
        (17, 0, SlotUnavailable),
        (16, 45, SlotUnavailable),
        (10, 10, SlotUnavailable),
    ],
)
def test_times_outside_hours_or_off_the_grid_are_refused(
    salon: Salon, hour: int, minute: int, error: type[Exception]
) -> None:
    with pytest.raises(error):
        book(salon, hour, minute)


def test_the_past_and_beyond_the_horizon_are_refused(salon: Salon) -> None:
    with tenant_context(salon.company), pytest.raises(OutsideBookingWindow, match="past"):
        services.book_appointment(
            service=salon.service,
            staff=salon.staff,
            customer=salon.customer,
            actor=ACTOR,
            start=salon.at(10) - timedelta(days=10),
        )
    with tenant_context(salon.company), pytest.raises(OutsideBookingWindow, match="ahead"):
        services.book_appointment(
            service=salon.service,
            staff=salon.staff,
            customer=salon.customer,
            actor=ACTOR,
            start=salon.at(10) + timedelta(days=salon.service.horizon_days + 1),
        )


def test_a_taken_slot_is_refused_but_another_staff_member_is_free(salon: Salon) -> None:
    book(salon, 10)
    with pytest.raises(SlotTaken):
        book(salon, 10)
    assert book(salon, 10, staff=salon.other_staff).staff_id == salon.other_staff.pk


def test_the_buffer_keeps_the_next_slot_free(salon: Salon) -> None:
    with tenant_context(salon.company):
        salon.service.buffer_minutes = 15
        salon.service.save()
    first = book(salon, 10)
    assert first.busy_until == first.end + timedelta(minutes=15)
    with pytest.raises(SlotTaken):
        book(salon, 10, 30)
    book(salon, 11)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the database's own guard")
def test_postgresql_itself_refuses_overlapping_active_appointments(salon: Salon) -> None:
    first = book(salon, 10)
    clash = Appointment(
        company_id=first.company_id,
        branch=salon.branch,
        staff=salon.staff,
        service=salon.service,
        customer=salon.customer,
        start=first.start + timedelta(minutes=15),
        end=first.end + timedelta(minutes=15),
        busy_until=first.end + timedelta(minutes=15),
    )
    with tenant_context(salon.company), pytest.raises(IntegrityError), transaction.atomic():
        clash.save()
    clash.status = AppointmentStatus.CANCELLED  # inactive rows may overlap
    with tenant_context(salon.company):
        clash.save()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrency needs PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_bookings_of_one_slot_make_one_appointment(world: Any) -> None:
    salon = make_salon(world.a)
    barrier = threading.Barrier(20)
    outcomes: list[str] = []
    lock = threading.Lock()

    def attempt() -> None:
        try:
            barrier.wait()
            with tenant_context(salon.company):
                services.book_appointment(
                    service=salon.service,
                    staff=salon.staff,
                    start=salon.at(10),
                    customer=salon.customer,
                    actor=ACTOR,
                )
            outcome = "booked"
        except SlotTaken:
            outcome = "slot_taken"
        except Exception as exc:  # reported, not hidden
            outcome = f"error: {exc!r}"
        finally:
            connections.close_all()
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=attempt) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["booked"] + ["slot_taken"] * 19
    with tenant_context(salon.company):
        assert Appointment.objects.filter(staff=salon.staff, start=salon.at(10)).count() == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrency needs PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_concurrent_first_bookings_with_one_new_phone_make_one_customer(world: Any) -> None:
    salon = make_salon(world.a)
    barrier = threading.Barrier(8)
    ids: list[int] = []

    def attempt() -> None:
        barrier.wait()
        try:
            with tenant_context(salon.company):
                customer = services.find_or_create_customer("New Caller", "030 7654321", "DE")
            ids.append(customer.pk)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ids) == 8
    assert len(set(ids)) == 1
    with tenant_context(salon.company):
        assert Customer.objects.filter(phone="+49307654321").count() == 1


def test_rescheduling_moves_the_same_appointment(salon: Salon) -> None:
    appointment = book(salon, 10)
    with tenant_context(salon.company):
        moved = services.reschedule_appointment(
            appointment, start=salon.at(14), staff=salon.other_staff, actor=ACTOR
        )
        assert moved.pk == appointment.pk
        assert Appointment.objects.filter(customer=salon.customer).count() == 1
        assert (moved.start, moved.staff_id) == (salon.at(14), salon.other_staff.pk)
        actions = list(moved.history.values_list("action", flat=True))
    assert actions == ["created", "rescheduled"]
    book(salon, 10)  # the old time is free again


def test_rescheduling_into_a_taken_slot_leaves_the_appointment_where_it_was(salon: Salon) -> None:
    appointment = book(salon, 10)
    book(salon, 11)
    with tenant_context(salon.company):
        with pytest.raises(SlotTaken):
            services.reschedule_appointment(appointment, start=salon.at(11), actor=ACTOR)
        appointment.refresh_from_db()
        assert appointment.start == salon.at(10)
        assert salon.customer.appointments.filter(status__in=["pending", "confirmed"]).count() == 2


def test_rescheduling_by_fifteen_minutes_may_overlap_its_own_old_time(salon: Salon) -> None:
    with tenant_context(salon.company):
        salon.service.slot_interval_minutes = 15
        salon.service.save()
    appointment = book(salon, 10)
    with tenant_context(salon.company):
        moved = services.reschedule_appointment(appointment, start=salon.at(10, 15), actor=ACTOR)
    assert moved.start == salon.at(10, 15)


def test_cancelling_frees_the_slot_and_is_idempotent(salon: Salon) -> None:
    appointment = book(salon, 10)
    with tenant_context(salon.company):
        cancelled = services.cancel_appointment(appointment, actor=ACTOR, reason="ill")
        again = services.cancel_appointment(appointment, actor=ACTOR)
        assert cancelled.status == again.status == AppointmentStatus.CANCELLED
        assert cancelled.cancellation_reason == "ill"
        assert appointment.history.filter(action="cancelled").count() == 1
    book(salon, 10)


def test_completion_and_no_show_wait_for_the_start(salon: Salon) -> None:
    appointment = book(salon, 10)
    with tenant_context(salon.company):
        with pytest.raises(InvalidTransition):
            services.mark_completed(appointment, actor=ACTOR)
        after = salon.at(11)
        assert services.mark_no_show(appointment, actor=ACTOR, now=after).status == "no_show"
        with pytest.raises(InvalidTransition):
            services.cancel_appointment(appointment, actor=ACTOR)


def test_the_periodic_job_completes_past_appointments_of_every_company(world: Any) -> None:
    salons = [make_salon(world.a), make_salon(world.b)]
    booked = [book(s, 10) for s in salons]
    later = salons[0].at(12) + timedelta(days=1)
    assert services.complete_past_appointments(now=later) == 2
    with all_tenants("test"):
        statuses = set(
            Appointment.objects.filter(pk__in=[b.pk for b in booked]).values_list(
                "status", flat=True
            )
        )
        assert statuses == {AppointmentStatus.COMPLETED}
        assert AppointmentHistory.objects.filter(action="completed").count() == 2
    assert services.complete_past_appointments(now=later) == 0


def test_the_periodic_task_runs_without_a_tenant(world: Any) -> None:
    from bookings.tasks import complete_past_appointments_task

    # Future appointments only: nothing to complete, and no TenantNotSet either.
    assert complete_past_appointments_task.delay().get() == 0


@pytest.mark.skipif(connection.vendor != "postgresql", reason="lock timeouts are PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_a_booking_that_waits_past_the_lock_timeout_is_slot_taken(world: Any) -> None:
    """A conflicting booking still in flight makes ours wait; past lock_timeout PostgreSQL
    answers lock_not_available (55P03), which must read as SlotTaken, not a 500."""
    salon = make_salon(world.a)
    holding, release = threading.Event(), threading.Event()

    def hold_the_slot() -> None:
        try:
            with tenant_context(salon.company), transaction.atomic():
                services.book_appointment(
                    service=salon.service,
                    staff=salon.staff,
                    start=salon.at(10),
                    customer=salon.customer,
                    actor=ACTOR,
                )
                holding.set()
                release.wait(10)
        finally:
            connections.close_all()

    thread = threading.Thread(target=hold_the_slot)
    thread.start()
    try:
        assert holding.wait(10)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '200ms'")
        # The uncommitted row is invisible to our check, so we reach the INSERT and wait.
        with tenant_context(salon.company), pytest.raises(SlotTaken):
            book(salon, 10)
    finally:
        release.set()
        thread.join()
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
