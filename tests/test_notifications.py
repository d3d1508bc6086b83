"""Customer notifications: confirmations, cancellations, moves, deposit links, reminders.

Jobs are written in the booking's transaction (never run inside a test transaction by
``on_commit``), so each test runs them as the outbox would: ``outbox.run`` in the tenant.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.core import mail

from bookings import saga, services
from bookings.models import Appointment, AppointmentStatus
from bookings.notifications import sms
from bookings.notifications.reminders import queue_due_reminders
from integrations import outbox
from integrations.credentials import connect
from integrations.models import JobStatus, OutboxJob
from integrations.simulator import ProviderSimulator
from tenants.context import tenant_context
from tests.conftest import Salon, World, make_salon

USER = services.Actor(kind="api")
CALENDAR = services.Actor(kind="calendar")
PHONE = "+4915112345678"  # the salon customer's


@pytest.fixture(autouse=True)
def sms_memory(settings: Any) -> Iterator[list[sms.Sms]]:
    settings.SMS_BACKEND = "bookings.notifications.sms.MemorySmsChannel"
    sms.outbox.clear()
    yield sms.outbox
    sms.outbox.clear()


@pytest.fixture
def shop(salon: Salon) -> Iterator[Salon]:
    """The salon, bound; its customer has an e-mail address too."""
    with tenant_context(salon.company):
        salon.customer.email = "erika@example.com"
        salon.customer.save()
        yield salon


def book(salon: Salon, hour: int = 10, **kwargs: Any) -> Appointment:
    return services.book_appointment(
        service=salon.service,
        staff=salon.staff,
        start=salon.at(hour),
        customer=salon.customer,
        actor=USER,
        **kwargs,
    )


def run_notifications() -> list[str]:
    """What the outbox does once the jobs are due: run every notification job now."""
    jobs = OutboxJob.objects.filter(kind__startswith="notify.")
    jobs.filter(status=JobStatus.PENDING).update(next_attempt_at=None)
    return [outbox.run(pk) for pk in jobs.order_by("pk").values_list("pk", flat=True)]


def texts() -> list[str]:
    return [message.body for message in sms.outbox]


def when_de(salon: Salon, hour: int) -> str:
    return f"{salon.day:%d.%m.%Y} um {hour:02d}:00 Uhr"


# --- confirmations ------------------------------------------------------------------------


def test_a_booking_sends_one_confirmation_by_email_and_sms(shop: Salon) -> None:
    appointment = book(shop)
    assert OutboxJob.objects.get(kind="notify.booked").key == f"notify.booked:{appointment.pk}"
    assert run_notifications() == [JobStatus.DONE]

    [text] = texts()
    assert sms.outbox[0].to == PHONE
    assert text.startswith("Alpha Salon, Mitte: Ihr Termin für Cut am ")
    assert when_de(shop, 10) in text
    assert text.endswith("ist bestätigt.")
    [email] = mail.outbox
    assert email.to == ["erika@example.com"]
    assert email.subject.startswith("Termin bestätigt: Cut, ")
    assert email.body.startswith("Guten Tag Erika Muster,")
    assert text in email.body

    # Delivered again (a duplicate message, an expired lease): nothing new goes out.
    assert run_notifications() == ["skipped"]
    OutboxJob.objects.filter(kind="notify.booked").update(status=JobStatus.PENDING)
    assert run_notifications() == [JobStatus.DONE]
    assert (len(texts()), len(mail.outbox)) == (1, 1)


def test_english_outside_germany_in_the_branchs_time_zone(shop: Salon) -> None:
    shop.branch.country, shop.branch.timezone = "GB", "Europe/London"
    shop.branch.save()
    appointment = book(shop)  # 10:00 in Berlin
    run_notifications()
    [text] = texts()
    local = appointment.start.astimezone(ZoneInfo("Europe/London"))
    assert local.hour == 9
    assert text == (
        f"Alpha Salon, Mitte: your Cut on {local:%a} {local.day} {local:%b %Y} at 09:00 "
        "is confirmed."
    )
    assert mail.outbox[0].body.startswith("Hello Erika Muster,")


def test_cancel_and_move_send_their_variants(shop: Salon) -> None:
    appointment = book(shop)
    run_notifications()
    services.reschedule_appointment(appointment, start=shop.at(14), actor=USER)
    run_notifications()
    services.cancel_appointment(appointment, actor=USER, reason="ill")
    run_notifications()
    day = _weekday(shop)
    assert [t.split(": ", 1)[1] for t in texts()] == [
        f"Ihr Termin für Cut am {day}, {when_de(shop, 10)} ist bestätigt.",
        f"Ihr Termin für Cut wurde auf {day}, {when_de(shop, 14)} verschoben.",
        f"Ihr Termin für Cut am {day}, {when_de(shop, 14)} wurde abgesagt.",
    ]
    assert [m.subject.split(":")[0] for m in mail.outbox] == [
        "Termin bestätigt",
        "Termin verschoben",
        "Termin abgesagt",
    ]
    keys = set(OutboxJob.objects.filter(kind__startswith="notify.").values_list("key", flat=True))
    assert keys == {
        f"notify.booked:{appointment.pk}",
        f"notify.moved:{appointment.pk}:{shop.at(14).astimezone(UTC).isoformat()}",
        f"notify.cancelled:{appointment.pk}",
    }


def _weekday(salon: Salon) -> str:
    return ("Mo.", "Di.", "Mi.", "Do.", "Fr.", "Sa.", "So.")[salon.day.weekday()]


def test_moving_back_and_forth_tells_each_move_and_a_no_op_move_nothing(shop: Salon) -> None:
    appointment = book(shop)
    run_notifications()
    # There, back, there again, and the same time once more (a retried tool call).
    for hour in (14, 10, 14, 14):
        services.reschedule_appointment(appointment, start=shop.at(hour), actor=USER)
        run_notifications()
    moves = [t for t in texts() if "verschoben" in t]
    assert [when_de(shop, 14) in m for m in moves] == [True, False, True]
    assert len(texts()) == 4


def test_a_move_overtaken_by_another_tells_only_the_latest(shop: Salon) -> None:
    appointment = book(shop)
    run_notifications()
    services.reschedule_appointment(appointment, start=shop.at(14), actor=USER)
    services.reschedule_appointment(appointment, start=shop.at(15), actor=USER)
    run_notifications()
    [move] = [t for t in texts() if "verschoben" in t]
    assert when_de(shop, 15) in move


def test_a_cancellation_by_the_calendar_is_told_too(shop: Salon) -> None:
    appointment = book(shop)
    run_notifications()
    services.cancel_appointment(appointment, actor=CALENDAR, reason="cancelled in Cal.com")
    run_notifications()
    assert "wurde abgesagt" in texts()[-1]


def test_email_only_when_the_customer_has_no_phone(shop: Salon) -> None:
    shop.customer.phone = ""
    shop.customer.save()
    book(shop)
    run_notifications()
    assert (texts(), len(mail.outbox)) == ([], 1)


def test_a_failed_sms_is_retried_without_sending_the_email_again(
    shop: Salon, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(self: Any, to: str, body: str) -> None:
        raise ConnectionError(f"gateway refused {to}")

    monkeypatch.setattr(sms.MemorySmsChannel, "send", down)
    book(shop)
    assert run_notifications() == [JobStatus.PENDING]
    job = OutboxJob.objects.get(kind="notify.booked")
    assert job.last_error == "IntegrationError: sms send: ConnectionError"  # no number
    assert job.payload["sent"] == ["email"]
    monkeypatch.undo()
    assert run_notifications() == [JobStatus.DONE]
    assert (len(texts()), len(mail.outbox)) == (1, 1)


# --- pending bookings ---------------------------------------------------------------------


def test_a_pending_booking_is_received_then_confirmed_by_the_calendar(shop: Salon) -> None:
    appointment = book(shop, calendar_pending=True)
    job = OutboxJob.objects.get(kind="notify.booked")
    assert job.next_attempt_at is not None  # waits briefly for the calendar
    run_notifications()
    assert texts()[0].endswith("erhalten. Die Bestätigung folgt.")
    assert mail.outbox[0].subject.startswith("Buchung erhalten")

    saga.confirm(appointment, "cal-uid-1")  # the outbox's calendar sync got through
    run_notifications()
    assert len(texts()) == 2
    assert texts()[1].endswith("ist bestätigt.")


def test_a_calendar_that_confirms_quickly_sends_one_confirmation(shop: Salon) -> None:
    appointment = book(shop, calendar_pending=True)
    saga.confirm(appointment, "cal-uid-1")  # within the request, before the job is due
    assert sorted(run_notifications()) == [JobStatus.DONE, JobStatus.DONE]
    [text] = texts()
    assert text.endswith("ist bestätigt.")
    assert len(mail.outbox) == 1


def test_a_booking_released_before_anything_was_said_sends_nothing(shop: Salon) -> None:
    appointment = book(shop, calendar_pending=True)
    saga.release(appointment, "the calendar refused: taken")  # the caller heard "taken"
    run_notifications()
    assert texts() == []
    assert mail.outbox == []


def test_a_pending_booking_cancelled_later_is_told(shop: Salon) -> None:
    appointment = book(shop, calendar_pending=True)
    run_notifications()
    saga.release(appointment, "the calendar refused: taken")
    run_notifications()
    assert ["erhalten" in t for t in texts()] == [True, False]
    assert "wurde abgesagt" in texts()[1]


# --- deposits -----------------------------------------------------------------------------


@pytest.fixture
def deposit(shop: Salon, providers: ProviderSimulator, settings: Any) -> Salon:
    settings.BREAKERS = {"default": {"min_calls": 50}}
    connect("stripe", "sk_test_salon")
    shop.service.price, shop.service.deposit = Decimal("40"), Decimal("20")
    shop.service.save()
    return shop


def pay(simulator: ProviderSimulator, salon: Salon, appointment: Appointment) -> None:
    """The customer pays; the Stripe webhook's handler runs as the worker runs it."""
    from webhooks.handlers.stripe import checkout_completed
    from webhooks.models import WebhookEvent

    session = simulator.pay_checkout_session(appointment.stripe_checkout_session_id)
    event = WebhookEvent(
        provider="stripe",
        event_type="checkout.session.completed",
        payload={"type": "checkout.session.completed", "data": {"object": session}},
    )
    event.company_id = salon.company.pk
    checkout_completed(event)


def test_the_deposit_link_goes_out_and_payment_confirms(
    deposit: Salon, simulator: ProviderSimulator
) -> None:
    appointment = saga.book(
        service=deposit.service,
        staff=deposit.staff,
        start=deposit.at(10),
        customer=deposit.customer,
        actor=USER,
        source="phone",
    )
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.PENDING
    url = appointment.deposit_checkout_url
    assert url.endswith(f"/stripe/pay/{appointment.stripe_checkout_session_id}")
    run_notifications()
    [received] = texts()
    assert received.endswith(f"Zur Bestätigung zahlen Sie bitte die Anzahlung von 20,00 EUR: {url}")
    assert url in mail.outbox[0].body

    pay(simulator, deposit, appointment)
    appointment.refresh_from_db()
    assert (appointment.status, appointment.deposit_status) == ("confirmed", "paid")
    run_notifications()
    assert len(texts()) == 2
    assert texts()[1].endswith("ist bestätigt.")
    assert url not in texts()[1]


def test_the_message_makes_the_link_when_the_saga_could_not(
    deposit: Salon, simulator: ProviderSimulator
) -> None:
    simulator.set_fault("stripe", error_rate=1.0)
    appointment = saga.book(
        service=deposit.service,
        staff=deposit.staff,
        start=deposit.at(10),
        customer=deposit.customer,
        actor=USER,
        source="phone",
    )
    # Stripe still down: the message waits (nothing sent yet) and is retried.
    assert run_notifications() == [JobStatus.PENDING]
    assert texts() == []
    simulator.clear_faults()
    assert run_notifications() == [JobStatus.DONE]
    appointment.refresh_from_db()
    assert appointment.deposit_checkout_url
    assert appointment.deposit_checkout_url in texts()[0]
    sessions = simulator.state["stripe"]["checkout_sessions"]
    assert list(sessions) == [appointment.stripe_checkout_session_id]  # one session only


def test_no_link_without_a_deposit(deposit: Salon) -> None:
    deposit.service.price, deposit.service.deposit = Decimal("40"), Decimal("0")
    deposit.service.save()
    book(deposit)
    run_notifications()
    assert "http" not in texts()[0]


# --- reminders ----------------------------------------------------------------------------


def test_a_reminder_goes_out_once_in_the_24_hours_before(shop: Salon) -> None:
    appointment = book(shop)
    run_notifications()
    start = appointment.start
    assert queue_due_reminders(now=start - timedelta(hours=25)) == 0  # too early
    assert queue_due_reminders(now=start - timedelta(hours=20)) == 1
    assert queue_due_reminders(now=start - timedelta(hours=19)) == 0  # once
    run_notifications()
    assert len(texts()) == 2
    assert texts()[1] == (
        f"Alpha Salon, Mitte: zur Erinnerung: Ihr Termin für Cut am "
        f"{_weekday(shop)}, {when_de(shop, 10)}."
    )
    assert mail.outbox[1].subject.startswith("Terminerinnerung")


def test_no_reminder_for_cancelled_past_pending_or_far_future(shop: Salon) -> None:
    cancelled = book(shop, hour=10)
    services.cancel_appointment(cancelled, actor=USER)
    book(shop, hour=11, calendar_pending=True)  # not confirmed (yet)
    confirmed = book(shop, hour=12)
    start = confirmed.start
    assert queue_due_reminders(now=start - timedelta(hours=20)) == 1  # only the confirmed one
    assert queue_due_reminders(now=start + timedelta(hours=1)) == 0  # past
    OutboxJob.objects.filter(kind="notify.reminder").delete()
    Appointment.objects.update(reminded_start=None)
    assert queue_due_reminders(now=start - timedelta(days=2)) == 0  # far future


def test_a_moved_appointment_is_reminded_again(shop: Salon) -> None:
    appointment = book(shop)
    assert queue_due_reminders(now=appointment.start - timedelta(hours=20)) == 1
    moved = services.reschedule_appointment(appointment, start=shop.at(14), actor=USER)
    assert queue_due_reminders(now=moved.start - timedelta(hours=20)) == 1
    run_notifications()
    reminders = [t for t in texts() if "Erinnerung" in t]
    assert len(reminders) == 1  # the one for 10:00 is stale: 14:00 is reminded
    assert when_de(shop, 14) in reminders[0]
    keys = OutboxJob.objects.filter(kind="notify.reminder").values_list("key", flat=True)
    assert len(set(keys)) == 2


def test_the_reminder_job_is_scheduled_on_maintenance() -> None:
    from askpro.celery import app
    from bookings.notifications.tasks import send_reminders

    entries = [e for e in app.conf.beat_schedule.values() if e["task"] == send_reminders.name]
    assert [e["schedule"] for e in entries] == [600]
    assert app.amqp.router.route({}, send_reminders.name)["queue"].name == "maintenance"


def test_the_reminder_task_runs_without_a_bound_tenant(shop: Salon) -> None:
    from bookings.notifications.tasks import send_reminders

    book(shop)  # three days ahead: not due now
    assert send_reminders.delay().get() == 0


# --- logs and tenants ---------------------------------------------------------------------


def test_no_full_phone_number_in_the_logs(
    shop: Salon, settings: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.SMS_BACKEND = "bookings.notifications.sms.LogSmsChannel"  # the default
    caplog.set_level(logging.INFO)
    appointment = book(shop)
    run_notifications()
    assert "sms to +49151****78: Alpha Salon, Mitte: Ihr Termin" in caplog.text

    def down(self: Any, to: str, body: str) -> None:
        raise ConnectionError(f"gateway refused {to}")

    monkeypatch.setattr(sms.LogSmsChannel, "send", down)
    services.cancel_appointment(appointment, actor=USER)
    assert run_notifications()[-1] == JobStatus.PENDING
    assert "sms send: ConnectionError" in caplog.text
    assert PHONE not in caplog.text
    assert PHONE[1:] not in caplog.text


def test_jobs_run_inside_their_company(world: World, shop: Salon) -> None:
    other = make_salon(world.b)
    with tenant_context(world.b):
        theirs = book(other)
        [their_job] = OutboxJob.objects.filter(kind="notify.booked").values_list("pk", flat=True)
    mine = book(shop)
    # Another company's job isn't even visible here: claimed by nobody, nothing sent.
    assert outbox.run(their_job) == "skipped"
    assert texts() == []
    run_notifications()
    assert [t.split(":")[0] for t in texts()] == ["Alpha Salon, Mitte"]

    # The reminder run spans companies, each job queued inside its own.
    start = max(mine.start, theirs.start)
    assert queue_due_reminders(now=start - timedelta(hours=20)) == 2
    with tenant_context(world.b):
        [reminder] = OutboxJob.objects.filter(kind="notify.reminder")
        assert (reminder.company_id, reminder.payload["appointment_id"]) == (world.b.pk, theirs.pk)
        run_notifications()
    assert [t.split(":")[0] for t in texts()] == [
        "Alpha Salon, Mitte",
        "Beta Workshop, Mitte",  # their booking
        "Beta Workshop, Mitte",  # their reminder
    ]
