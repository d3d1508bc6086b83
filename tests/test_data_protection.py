"""Personal data: forget_customer leaves no trace of the customer in any table, keeps their
appointments anonymised and touches no one else; export_customer hands over what we
hold; call content expires after the retention."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from bookings import services
from bookings.models import Appointment, AppointmentHistory, Customer
from tenants.context import all_tenants, tenant_context
from tenants.db.roles import as_owner
from tests import signing
from tests.conftest import Salon, World, login
from tests.factories import (
    AppointmentFactory,
    CallLogFactory,
    CustomerFactory,
    IdempotencyRecordFactory,
    OutboxJobFactory,
    WebhookEndpointFactory,
    WebhookEventFactory,
)
from webhooks.models import CallLog, Payment, WebhookEndpoint, WebhookEvent
from webhooks.tasks import expire_call_data

PHONE = "+4915112345678"  # the fixtures' caller
NAME, EMAIL = "Max Mustermann", "max@example.com"  # the fixtures' attendee
# Every form the number can take, down to its last nine digits, and the person.
TRACES = [
    PHONE,
    "4915112345678",
    "015112345678",
    "15112345678",
    "112345678",
    "0151 1234 5678",
    "+49 151 12345678",
    NAME,
    "Mustermann",
    EMAIL,
]
SECRET = {"stripe": "whsec_dp", "retell": "key_dp", "calcom": "cal_dp"}
CALL_ID = "call_4f7e2b9c1d0a8e6f5b3c2a19"


# --- seeding: the customer everywhere a customer can be ------------------------------------


def _post(endpoint: WebhookEndpoint, payload: dict[str, Any]) -> int:
    body = json.dumps(payload).encode()
    return (
        Client()
        .post(
            endpoint.path,
            body,
            content_type="application/json",
            **signing.signed_headers(endpoint.provider, body, SECRET[endpoint.provider]),
        )
        .status_code
    )


def _retell(name: str) -> dict[str, Any]:
    payload = signing.fixture(f"retell/{name}")
    if "transcript" in payload["call"]:
        payload["call"]["transcript"] = (
            f"Agent: Guten Tag!\nUser: Hier ist {NAME}, meine Nummer ist 0151 1234 5678.\n"
            + payload["call"]["transcript"]
        )
    return payload


def _stripe(name: str, appointment: Appointment) -> dict[str, Any]:
    payload = signing.fixture(f"stripe/{name}")
    obj = payload["data"]["object"]
    obj["metadata"] = {
        "appointment_id": str(appointment.pk),
        "company_id": str(appointment.company_id),
    }
    if "customer_details" in obj:
        obj["customer_details"].update(email=EMAIL, name=NAME, phone=PHONE)
    return payload


@dataclass
class Seeded:
    customer: Customer
    neighbour: Customer  # another customer of the same company
    appointments: list[Appointment]
    dedup_keys: set[str]


def seed(world: World, salon: Salon) -> Seeded:
    """The fixtures' caller as a customer of company a, through the real paths: calls,
    calendar bookings and payments delivered as signed webhooks and processed."""
    with tenant_context(world.a):
        WebhookEndpoint.objects.all().delete()
        hooks = {p: WebhookEndpointFactory(provider=p, secret=s) for p, s in SECRET.items()}
        salon.branch.retell_agent_id = "agent_7c1e9b2f4a6d8e0c3b5a"
        salon.branch.save()
        salon.staff.calcom_user_id = 4021
        salon.staff.save()
        salon.service.calcom_event_type_id = 1187
        salon.service.save()
        customer = salon.customer
        customer.name, customer.email = NAME, EMAIL
        customer.notes = "Mobile 0151 1234 5678, prefers Anna"
        customer.save()
        booked = AppointmentFactory(
            customer=customer,
            staff=salon.staff,
            service=salon.service,
            idempotency_key=f"retell:{CALL_ID}:1:x",
            notes=f"Name given on the phone: {NAME}",
        )
        services.record_history(booked, "note", services.SYSTEM, said=f"{NAME}, {PHONE}")
        deposit = AppointmentFactory(
            customer=customer,
            staff=salon.other_staff,
            service=salon.service,
            status="pending",
            deposit_status="required",
            deposit_checkout_url="https://checkout.stripe.com/c/pay/cs_test_1",
        )
        cancelled = AppointmentFactory(customer=customer, staff=salon.staff, service=salon.service)
        services.cancel_appointment(
            cancelled, actor=services.SYSTEM, reason=f"{NAME} is ill, call {PHONE}"
        )
        OutboxJobFactory(
            kind="notify.booked",
            key=f"notify.booked:{booked.pk}",
            payload={"appointment_id": booked.pk, "sent": ["email"]},
            last_error=f"SMTPRecipientsRefused: {EMAIL}",
        )
        IdempotencyRecordFactory(
            response_body={"id": customer.pk, "name": NAME, "phone": PHONE, "email": EMAIL},
            status_code=201,
            in_progress=False,
        )
        neighbour = CustomerFactory(name="Erika Muster", notes="Wife of +49 151 12345678")
        CallLogFactory(
            call_id="call_other",
            from_number="+4915199999999",
            transcript="User: my husband's number is 015112345678",
        )
    for name in ("call_started", "call_ended", "call_analyzed"):
        assert _post(hooks["retell"], _retell(name)) == 202
    assert _post(hooks["calcom"], signing.fixture("calcom/BOOKING_CREATED")) == 202
    assert _post(hooks["stripe"], _stripe("payment_intent.payment_failed", deposit)) == 202
    assert _post(hooks["stripe"], _stripe("checkout.session.completed", deposit)) == 202
    with tenant_context(world.a):
        LogEntry.objects.create(
            user=world.owner_a,
            content_type=ContentType.objects.get_for_model(Customer),
            object_id=str(customer.pk),
            object_repr=str(customer),
            action_flag=CHANGE,
            change_message=f"Changed phone to {PHONE}",
        )
        LogEntry.objects.create(
            user=world.owner_a,
            content_type=ContentType.objects.get_for_model(Appointment),
            object_id=str(booked.pk),
            object_repr=str(booked),
            action_flag=CHANGE,
            change_message='[{"changed": {"fields": ["Notes"]}}]',
        )
        appointments = list(Appointment.objects.filter(customer=customer).order_by("pk"))
        assert any(a.source == "calendar" for a in appointments)  # Cal.com found the customer
        call = CallLog.objects.get(call_id=CALL_ID)
        assert (call.customer_id, call.appointment_id) == (customer.pk, booked.pk)
        assert NAME in call.transcript
        assert Payment.objects.filter(appointment=deposit).exists()
        keys = set(WebhookEvent.objects.values_list("dedup_key", flat=True))
    return Seeded(customer, neighbour, appointments, keys)


# --- looking at every table as the owner (row-level security hides nothing) -------------


def _text_columns() -> list[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT c.table_name, c.column_name FROM information_schema.columns c
               JOIN information_schema.tables t
                 ON t.table_schema = c.table_schema AND t.table_name = c.table_name
               WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'
                 AND c.data_type IN ('text', 'character varying', 'character', 'json', 'jsonb')
               ORDER BY 1, 2"""
        )
        return list(cursor.fetchall())


def traces(needles: list[str], *, except_company: int | None = None) -> dict[str, int]:
    """``table.column ~ needle`` → rows, over every text/JSON column of every table."""
    found: dict[str, int] = {}
    with as_owner(), connection.cursor() as cursor:
        columns = _text_columns()
        with_company = {t for t, c in columns} & _tables_with_company(cursor)
        for table, column in columns:
            for needle in needles:
                quoted = connection.ops.quote_name
                sql = f"SELECT count(*) FROM {quoted(table)} WHERE {quoted(column)}::text ILIKE %s"  # noqa: S608 - names from the catalogue
                args: list[Any] = [f"%{needle}%"]
                if except_company is not None and table in with_company:
                    sql += " AND company_id <> %s"
                    args.append(except_company)
                cursor.execute(sql, args)
                count = cursor.fetchone()[0]
                if count:
                    found[f"{table}.{column} ~ {needle}"] = count
    return found


def _tables_with_company(cursor: Any) -> set[str]:
    cursor.execute(
        "SELECT table_name FROM information_schema.columns "
        "WHERE table_schema = 'public' AND column_name = 'company_id'"
    )
    return {row[0] for row in cursor.fetchall()}


def redis_traces(needles: list[str]) -> list[str]:
    """Cache keys (sessions, throttles, inbox "seen" marks, busy times) whose name or value
    holds a needle; nothing is ever cached by phone number."""
    from django.conf import settings

    if not settings.REDIS_URL:
        return []
    from django_redis import get_redis_connection

    found = []
    for alias in ("default", "sessions"):
        redis = get_redis_connection(alias)
        for key in redis.scan_iter():
            kind = redis.type(key)
            if kind == b"string":
                blob = key + (redis.get(key) or b"")
            elif kind == b"hash":
                blob = key + b"".join(k + v for k, v in redis.hgetall(key).items())
            else:
                blob = key
            found += [f"{key!r} ~ {n}" for n in needles if n.encode() in blob]
    return found


def fingerprint() -> dict[str, str]:
    """A digest of every table's rows: equal before and after means nothing changed."""
    with as_owner(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1"
        )
        digests = {}
        for (table,) in cursor.fetchall():
            rows = f"SELECT x::text AS row FROM {connection.ops.quote_name(table)} x"  # noqa: S608
            digest = "SELECT md5(coalesce(string_agg(row, '|' ORDER BY row), ''))"
            cursor.execute(f"{digest} FROM ({rows}) r")
            digests[table] = cursor.fetchone()[0]
    return digests


# --- forget_customer -------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_forget_customer_leaves_no_trace_of_the_customer_in_any_table(
    world: World, salon: Salon
) -> None:
    seed(world, salon)
    assert len(traces(TRACES)) > 10  # the seed really put the customer everywhere

    out = io.StringIO()
    call_command("forget_customer", company="alpha", phone="0151 1234 5678", stdout=out)

    assert traces(TRACES) == {}
    assert redis_traces(TRACES) == []
    assert "Personal data erased in alpha" in out.getvalue()
    assert "5678" not in out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_forgotten_appointments_stay_anonymised_and_deliveries_still_deduplicate(
    world: World, salon: Salon
) -> None:
    seeded = seed(world, salon)
    before = [
        (a.pk, a.start, a.end, a.status, a.staff_id, a.service_id) for a in seeded.appointments
    ]

    call_command("forget_customer", company="alpha", phone=PHONE, stdout=io.StringIO())

    with tenant_context(world.a):
        customer = Customer.objects.get(pk=seeded.customer.pk)
        assert (customer.name, customer.phone, customer.email, customer.notes) == (
            "Forgotten customer",
            "",
            "",
            "",
        )
        assert customer.forgotten_at is not None
        after = Appointment.objects.filter(customer=customer).order_by("pk")
        assert [(a.pk, a.start, a.end, a.status, a.staff_id, a.service_id) for a in after] == before
        assert all(a.notes == "" for a in after)
        erased = AppointmentHistory.objects.filter(action="personal_data_erased")
        assert sorted(erased.values_list("appointment_id", "actor")) == [
            (a.pk, "operator") for a in seeded.appointments
        ]
        call = CallLog.objects.get(call_id=CALL_ID)
        assert (call.transcript, call.recording_url, call.summary, call.from_number) == ("",) * 4
        assert (call.duration_ms, call.successful, call.customer_id) == (108000, True, customer.pk)
        assert Payment.objects.filter(appointment__customer=customer).exists()
        assert set(WebhookEvent.objects.values_list("dedup_key", flat=True)) == seeded.dedup_keys
        # The Cal.com events keep what out-of-order handling needs.
        created = WebhookEvent.objects.get(event_type="BOOKING_CREATED")
        assert created.payload["payload"]["uid"] == "bE3eTq2x9WvQm7N4cLpA1s"
        assert "attendees" not in created.payload["payload"]
        # The neighbour keeps their data; only the mention of the number went.
        neighbour = Customer.objects.get(pk=seeded.neighbour.pk)
        assert (neighbour.name, neighbour.notes) == ("Erika Muster", "Wife of [erased]")
    with tenant_context(world.a):
        retell = WebhookEndpoint.objects.get(provider="retell")
    assert _post(retell, _retell("call_analyzed")) == 200  # a re-delivery is still a duplicate


@pytest.mark.django_db(transaction=True)
def test_a_second_run_has_nothing_to_forget_and_changes_nothing(world: World, salon: Salon) -> None:
    seed(world, salon)
    call_command("forget_customer", company="alpha", phone=PHONE, stdout=io.StringIO())
    state = fingerprint()

    with pytest.raises(CommandError, match="Nothing to forget"):
        call_command("forget_customer", company="alpha", phone=PHONE, stdout=io.StringIO())
    out = io.StringIO()
    call_command("forget_customer", company="alpha", phone=PHONE, missing_ok=True, stdout=out)

    assert "Nothing to forget" in out.getvalue()
    assert fingerprint() == state


@pytest.mark.django_db(transaction=True)
def test_an_unknown_or_invalid_number_is_an_error_and_changes_nothing(
    world: World, salon: Salon
) -> None:
    seed(world, salon)
    state = fingerprint()

    with pytest.raises(CommandError, match="Nothing to forget"):
        call_command("forget_customer", company="alpha", phone="+4917099999999")
    with pytest.raises(CommandError, match="--phone"):
        call_command("forget_customer", company="alpha", phone="12")
    with pytest.raises(CommandError, match="No company"):
        call_command("forget_customer", company="nope", phone=PHONE)

    assert fingerprint() == state


@pytest.mark.django_db(transaction=True)
def test_forgetting_in_one_company_leaves_the_same_number_in_another_alone(
    world: World, salon: Salon
) -> None:
    seeded = seed(world, salon)
    with tenant_context(world.b):
        twin = CustomerFactory(name=NAME, phone=PHONE, email=EMAIL, notes="regular")
        twin_call = CallLogFactory(
            call_id=CALL_ID, customer=twin, from_number=PHONE, transcript=f"Hier ist {NAME}"
        )
        twin_event = WebhookEventFactory(
            provider="retell",
            event_type="call_ended",
            dedup_key=f"call_ended:{CALL_ID}",
            payload=_retell("call_ended"),
        )
    with tenant_context(world.a):
        others = {
            c.pk: (c.name, c.phone, c.email)
            for c in Customer.objects.exclude(pk__in=[seeded.customer.pk, seeded.neighbour.pk])
        }

    call_command("forget_customer", company="alpha", phone=PHONE, stdout=io.StringIO())

    assert traces(TRACES, except_company=world.b.pk) == {}
    with tenant_context(world.b):
        twin.refresh_from_db()
        assert (twin.name, twin.phone, twin.email, twin.notes) == (NAME, PHONE, EMAIL, "regular")
        assert CallLog.objects.get(pk=twin_call.pk).transcript == f"Hier ist {NAME}"
        assert WebhookEvent.objects.get(pk=twin_event.pk).payload == _retell("call_ended")
    with tenant_context(world.a):
        assert {
            c.pk: (c.name, c.phone, c.email)
            for c in Customer.objects.exclude(pk__in=[seeded.customer.pk, seeded.neighbour.pk])
        } == others


def test_managers_can_forget_customers_in_the_admin_and_staff_cannot(
    world: World, salon: Salon
) -> None:
    changelist = reverse("admin:bookings_customer_changelist")
    form = {"action": "forget_selected", "_selected_action": [salon.customer.pk]}

    login(world.staff_a).post(changelist, form)
    with tenant_context(world.a):
        assert Customer.objects.get(pk=salon.customer.pk).forgotten_at is None

    response = login(world.owner_a).post(changelist, form, follow=True)
    assert "1 customer(s) forgotten" in response.content.decode()
    with tenant_context(world.a):
        customer = Customer.objects.get(pk=salon.customer.pk)
        assert (customer.name, customer.phone) == ("Forgotten customer", "")
        assert customer.forgotten_at is not None


# --- export_customer -------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_export_hands_over_the_customer_and_nothing_of_anyone_else(
    world: World, salon: Salon
) -> None:
    seeded = seed(world, salon)
    with tenant_context(world.b):
        CustomerFactory(name="Twin In Beta", phone=PHONE, email="twin@example.com")
        CallLogFactory(call_id="call_beta", from_number=PHONE, transcript="beta secret")

    out = io.StringIO()
    call_command("export_customer", company="alpha", phone="015112345678", stdout=out)
    data = json.loads(out.getvalue())

    assert data["company"] == "alpha"
    assert (data["customer"]["name"], data["customer"]["phone"]) == (NAME, PHONE)
    assert sorted(a["id"] for a in data["appointments"]) == [a.pk for a in seeded.appointments]
    booked = next(a for a in data["appointments"] if a["notes"].startswith("Name given"))
    assert {h["action"] for h in booked["history"]} >= {"note"}
    assert booked["messages"][0]["kind"] == "booked"
    assert any(a["payments"] for a in data["appointments"])
    assert [c["call_id"] for c in data["calls"]] == [CALL_ID]
    assert NAME in data["calls"][0]["transcript"]
    assert {e["provider"] for e in data["provider_events"]} == {"retell", "calcom", "stripe"}
    text = out.getvalue()
    for stranger in ("Erika Muster", "call_other", "Twin In Beta", "beta secret", "husband"):
        assert stranger not in text
    with tenant_context(world.a):
        others = list(
            Customer.objects.exclude(pk=seeded.customer.pk).values_list("phone", flat=True)
        )
    assert not [phone for phone in others if phone and phone in text]


def test_exporting_an_unknown_number_is_an_error(world: World) -> None:
    with pytest.raises(CommandError, match="Nothing to export"):
        call_command("export_customer", company="alpha", phone=PHONE, stdout=io.StringIO())


# --- retention -------------------------------------------------------------------------


def test_call_content_expires_after_the_retention(world: World, settings: Any) -> None:
    settings.CALL_DATA_RETENTION_DAYS = 30
    now = timezone.now()
    with tenant_context(world.a):
        old = CallLogFactory(
            started_at=now - timedelta(days=31),
            transcript="User: hello",
            recording_url="https://example.invalid/r.wav",
            summary="booked",
            sentiment="Positive",
            duration_ms=1000,
        )
        recent = CallLogFactory(
            started_at=now - timedelta(days=29),
            transcript="User: hi",
            recording_url="https://example.invalid/s.wav",
            summary="asked",
        )
        stuck = WebhookEventFactory(
            provider="retell",
            event_type="call_analyzed",
            dedup_key="call_analyzed:call_stuck",
            payload=_retell("call_analyzed"),
            status="dead",
            received_at=now - timedelta(days=31),
        )
    with tenant_context(world.b):
        other_company_old = CallLogFactory(started_at=now - timedelta(days=40), transcript="x")

    assert expire_call_data.delay().get() == (2, 1)

    with all_tenants("test"):
        old.refresh_from_db()
        recent.refresh_from_db()
        other_company_old.refresh_from_db()
        stuck.refresh_from_db()
    assert (old.transcript, old.recording_url, old.summary) == ("", "", "")
    assert (old.sentiment, old.duration_ms) == ("Positive", 1000)
    assert (recent.transcript, recent.summary) == ("User: hi", "asked")
    assert other_company_old.transcript == ""
    assert "transcript" not in stuck.payload["call"]
    assert "recording_url" not in stuck.payload["call"]
    assert stuck.payload["call"]["call_id"] == CALL_ID
    assert expire_call_data.delay().get() == (0, 0)


def test_call_data_expiry_runs_hourly_on_the_maintenance_queue() -> None:
    from askpro.celery import app

    entries = [e for e in app.conf.beat_schedule.values() if e["task"] == expire_call_data.name]
    assert [e["schedule"] for e in entries] == [60 * 60]
    assert app.amqp.router.route({}, expire_call_data.name)["queue"].name == "maintenance"


@pytest.mark.parametrize(
    "written",
    [
        "+4915112345678",
        "+49 151 12345678",
        "+49 (0)151 1234-5678",
        "0049 151 12345678",
        "0151/1234 5678",
        "4915112345678",
        "(0151) 123 456 78",
    ],
)
def test_the_number_is_found_however_it_is_written(written: str) -> None:
    from bookings.privacy.needles import Needles

    needles = Needles(phone=PHONE, email=EMAIL, name=NAME)
    text = f"Ruf {written} an, oder {EMAIL.upper()}; {NAME.lower()}"
    assert needles.scrub(text, with_name=True) == "Ruf [erased] an, oder [erased]; [erased]"
    assert needles.scrub("+4915112345679 and Max Mustermann") == (
        "+4915112345679 and Max Mustermann"  # another number; names only where asked
    )
