"""The booking saga against the simulator, with a fault injected at each step.

Whatever fails: no Cal.com booking without its appointment, no slot held by a failed
booking, no deposit kept without an appointment.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db import DatabaseError

from bookings import saga, services
from bookings.errors import SlotTaken
from bookings.models import Appointment, AppointmentStatus
from integrations import outbox
from integrations.breakers import get_breaker
from integrations.clients.calcom import Attendee, CalcomClient
from integrations.credentials import connect, credentials_for
from integrations.deadline import Deadline
from integrations.models import JobStatus, OutboxJob
from integrations.simulator import ProviderSimulator
from tenants.context import tenant_context
from tests.conftest import Salon, seed_event_type

USER = services.Actor(kind="api")
EVENT_TYPE = 1187


@pytest.fixture
def sim(providers: ProviderSimulator, settings: Any, salon: Salon) -> Iterator[ProviderSimulator]:
    settings.BREAKERS = {"default": {"min_calls": 50}}
    seed_event_type(providers, EVENT_TYPE, "Cut")
    with tenant_context(salon.company):
        OutboxJob.objects.all().delete()  # the world's sample row
        connect("calcom", "cal_live_salon")
        connect("stripe", "sk_test_salon")
        salon.service.calcom_event_type_id = EVENT_TYPE
        salon.service.save()
        yield providers


def book(salon: Salon, hour: int = 10, **kwargs: Any) -> Appointment:
    return saga.book(
        service=salon.service,
        staff=salon.staff,
        start=salon.at(hour),
        customer=salon.customer,
        actor=USER,
        source="web",
        **kwargs,
    )


def calcom_bookings(sim: ProviderSimulator, status: str = "accepted") -> list[dict[str, Any]]:
    with sim.lock:
        return [b for b in sim.state["calcom"]["bookings"].values() if b["status"] == status]


def active(salon: Salon) -> list[Appointment]:
    return list(Appointment.objects.filter(staff=salon.staff, status__in=["pending", "confirmed"]))


def saga_jobs() -> Any:
    """The saga's own jobs (customer notifications have theirs: test_notifications.py)."""
    return OutboxJob.objects.exclude(kind__startswith="notify.")


def run_due_jobs() -> list[str]:
    """What the sweeper would do once the jobs are due: run every pending job now."""
    saga_jobs().filter(status=JobStatus.PENDING).update(next_attempt_at=None)
    return [outbox.run(pk) for pk in saga_jobs().values_list("pk", flat=True)]


def test_a_booking_is_confirmed_once_it_is_in_the_calendar(
    sim: ProviderSimulator, salon: Salon
) -> None:
    appointment = book(salon)
    assert (appointment.status, appointment.calendar_sync) == ("confirmed", "synced")
    [booking] = calcom_bookings(sim)
    assert appointment.calcom_uid == booking["uid"]
    assert booking["metadata"]["askpro_appointment_id"] == str(appointment.pk)
    # The safety-net job knows the work is done.
    assert saga_jobs().get().status == JobStatus.DONE
    actions = list(appointment.history.values_list("action", flat=True))
    assert actions == ["created", "calendar_synced"]


def test_a_permanent_refusal_by_the_calendar_releases_the_slot(
    sim: ProviderSimulator, salon: Salon
) -> None:
    CalcomClient(credentials_for("calcom"), Deadline.after(5)).create_booking(
        event_type_id=EVENT_TYPE,
        start=salon.at(10),
        attendee=Attendee(name="Walk-in", time_zone="Europe/Berlin", email="w@example.com"),
        metadata={"source": "front desk"},
    )
    with pytest.raises(SlotTaken):
        book(salon)
    assert active(salon) == []  # the slot is free again here
    refused = Appointment.objects.get(service=salon.service)
    assert refused.status == AppointmentStatus.CANCELLED
    assert "calendar refused" in refused.cancellation_reason
    assert len(calcom_bookings(sim)) == 1  # only the walk-in's
    assert set(run_due_jobs()) == {"done"}  # the safety net finds nothing to create
    assert len(calcom_bookings(sim)) == 1


def test_an_unreachable_calendar_leaves_it_pending_and_the_outbox_finishes_it(
    sim: ProviderSimulator, salon: Salon
) -> None:
    sim.set_fault("calcom", error_rate=1.0)
    appointment = book(salon)
    assert (appointment.status, appointment.calendar_sync) == ("pending", "pending")
    assert [a.pk for a in active(salon)] == [appointment.pk]  # it holds the slot meanwhile
    assert len(sim.requests("calcom")) == 3  # one call, retried: the only retry layer
    assert run_due_jobs() == [JobStatus.PENDING]  # still failing: retried later
    job = saga_jobs().get()
    assert (job.attempts, job.status) == (1, JobStatus.PENDING)
    assert "HTTP 500" in job.last_error

    sim.clear_faults()
    assert run_due_jobs() == [JobStatus.DONE]
    appointment.refresh_from_db()
    assert (appointment.status, appointment.calendar_sync) == ("confirmed", "synced")
    assert [b["uid"] for b in calcom_bookings(sim)] == [appointment.calcom_uid]


def test_an_open_breaker_defers_to_the_next_probe(sim: ProviderSimulator, salon: Salon) -> None:
    get_breaker("calcom").force("open")
    appointment = book(salon)
    assert appointment.calendar_sync == "pending"
    assert sim.requests("calcom") == []
    assert run_due_jobs() == [JobStatus.PENDING]
    assert "breaker open" in saga_jobs().get().last_error
    get_breaker("calcom").force("reset")
    assert run_due_jobs() == [JobStatus.DONE]
    assert len(calcom_bookings(sim)) == 1


def test_a_failed_confirm_cancels_the_calendar_booking(
    sim: ProviderSimulator, salon: Salon, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_confirm(appointment: Appointment, uid: str) -> None:
        raise DatabaseError("the database went away")

    monkeypatch.setattr(saga, "confirm", broken_confirm)
    with pytest.raises(DatabaseError):
        book(salon)
    assert calcom_bookings(sim) == []  # no orphan: the one it made is cancelled
    assert len(calcom_bookings(sim, "cancelled")) == 1
    monkeypatch.undo()
    # The appointment still holds its slot as pending; the outbox books it again.
    assert run_due_jobs() == [JobStatus.DONE]
    appointment = Appointment.objects.get(service=salon.service)
    assert (appointment.status, appointment.calendar_sync) == ("confirmed", "synced")
    assert [b["uid"] for b in calcom_bookings(sim)] == [appointment.calcom_uid]


def test_cancelled_while_at_the_calendar_leaves_no_calendar_booking(
    sim: ProviderSimulator, salon: Salon, monkeypatch: pytest.MonkeyPatch
) -> None:
    create = CalcomClient.create_booking

    def create_then_cancel_here(self: CalcomClient, **kwargs: Any) -> dict[str, Any]:
        booking = create(self, **kwargs)
        ours = Appointment.objects.get(pk=kwargs["metadata"]["askpro_appointment_id"])
        services.cancel_appointment(ours, actor=USER, reason="changed mind")
        return booking

    monkeypatch.setattr(CalcomClient, "create_booking", create_then_cancel_here)
    appointment = book(salon)
    assert appointment.status == AppointmentStatus.CANCELLED
    assert calcom_bookings(sim) == []
    assert active(salon) == []


def test_a_process_that_died_at_the_calendar_is_finished_without_a_second_booking(
    sim: ProviderSimulator, salon: Salon, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cal.com made the booking, then this process died before confirming."""

    def died(*args: Any) -> None:
        raise SystemExit("worker killed")

    monkeypatch.setattr(saga, "confirm", died)
    with pytest.raises(SystemExit):
        book(salon)
    monkeypatch.undo()
    assert len(calcom_bookings(sim)) == 1
    assert run_due_jobs() == [JobStatus.DONE]  # the retried create finds its own booking
    appointment = Appointment.objects.get(service=salon.service)
    assert appointment.calendar_sync == "synced"
    assert [b["uid"] for b in calcom_bookings(sim)] == [appointment.calcom_uid]


def test_cancelling_a_synced_appointment_cancels_it_in_the_calendar(
    sim: ProviderSimulator, salon: Salon
) -> None:
    appointment = book(salon)
    services.cancel_appointment(appointment, actor=USER, reason="ill")
    run_due_jobs()
    assert OutboxJob.objects.get(kind="calendar.cancel").status == JobStatus.DONE
    assert calcom_bookings(sim) == []
    [cancelled] = calcom_bookings(sim, "cancelled")
    assert cancelled["cancellationReason"] == "ill"


def test_a_cancel_reported_by_the_calendar_is_not_sent_back(
    sim: ProviderSimulator, salon: Salon
) -> None:
    appointment = book(salon)
    services.cancel_appointment(appointment, actor=services.Actor(kind="calendar"))
    assert not OutboxJob.objects.filter(kind="calendar.cancel").exists()


def test_moving_a_synced_appointment_moves_it_in_the_calendar(
    sim: ProviderSimulator, salon: Salon
) -> None:
    appointment = book(salon)
    services.reschedule_appointment(appointment, start=salon.at(14), actor=USER)
    run_due_jobs()
    appointment.refresh_from_db()
    [booking] = calcom_bookings(sim)
    assert booking["uid"] == appointment.calcom_uid
    assert datetime.fromisoformat(booking["start"].replace("Z", "+00:00")) == salon.at(14)


def test_the_admin_path_defers_everything_to_the_outbox(
    sim: ProviderSimulator, salon: Salon
) -> None:
    appointment = book(salon, defer=True)
    assert appointment.calendar_sync == "pending"
    assert sim.requests("calcom") == []
    assert run_due_jobs() == [JobStatus.DONE]
    assert len(calcom_bookings(sim)) == 1


# --- deposits -------------------------------------------------------------------------


@pytest.fixture
def deposit(salon: Salon, sim: ProviderSimulator) -> Salon:
    salon.service.price = Decimal("40")
    salon.service.deposit = Decimal("20")
    salon.service.save()
    return salon


def test_a_deposit_checkout_is_created_with_the_appointments_key(
    sim: ProviderSimulator, deposit: Salon
) -> None:
    sim.set_fault("stripe", error_rate=1.0, times=2)
    appointment = book(deposit)
    appointment.refresh_from_db()
    # Pending until paid, though the calendar has it.
    assert (appointment.status, appointment.calendar_sync) == ("pending", "synced")
    logged = sim.requests("stripe")
    assert [r["status"] for r in logged] == [500, 500, 200]
    assert {r["idempotency_key"] for r in logged} == {
        f"askpro-{deposit.company.pk}-appointment-{appointment.pk}-deposit"
    }
    assert appointment.stripe_checkout_session_id in sim.state["stripe"]["checkout_sessions"]
    assert len(sim.state["stripe"]["checkout_sessions"]) == 1


def test_a_deposit_paid_for_a_released_slot_is_refunded(
    sim: ProviderSimulator, deposit: Salon
) -> None:
    from webhooks.handlers.stripe import payment_intent
    from webhooks.models import WebhookEvent

    appointment = book(deposit)
    appointment.refresh_from_db()
    sim.pay_checkout_session(appointment.stripe_checkout_session_id)
    session = sim.state["stripe"]["checkout_sessions"][appointment.stripe_checkout_session_id]
    intent = sim.state["stripe"]["payment_intents"][session["payment_intent"]]
    services.cancel_appointment(appointment, actor=USER, reason="no longer needed")

    # The handler as the worker runs it, on the event Stripe sends for that payment.
    event = WebhookEvent(
        provider="stripe",
        event_type="payment_intent.succeeded",
        payload={"type": "payment_intent.succeeded", "data": {"object": intent}},
    )
    event.company_id = deposit.company.pk
    payment_intent(event)
    run_due_jobs()
    refunds = list(sim.state["stripe"]["refunds"].values())
    assert [(r["payment_intent"], r["amount"]) for r in refunds] == [(intent["id"], 2000)]
    assert OutboxJob.objects.get(kind="deposit.refund").status == JobStatus.DONE
