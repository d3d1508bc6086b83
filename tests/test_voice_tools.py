"""The voice agent's live tools: signed like Retell webhooks, always answered with 200 and
something to say; only the caller's own appointments; one booking per request, however
often Retell retries it."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.db import connection, connections
from django.test import Client

from bookings import services
from bookings.matching import best_match, names_match, normalize
from bookings.models import (
    Appointment,
    AppointmentSource,
    AppointmentStatus,
    CalendarSync,
    Customer,
)
from integrations.breakers import get_breaker, reset_stores
from integrations.credentials import connect
from tenants.context import all_tenants, tenant_context
from tests import signing
from tests.conftest import Salon, World, make_salon
from tests.factories import (
    AppointmentFactory,
    BranchFactory,
    ClosureFactory,
    CustomerFactory,
    ServiceFactory,
    StaffServiceFactory,
    TimeOffFactory,
    WebhookEndpointFactory,
)
from webhooks.models import WebhookEndpoint, WebhookEvent

KEY_A, KEY_B = "key_alpha_retell", "key_beta_retell"
AGENT_A, AGENT_B = "agent_7c1e9b2f4a6d8e0c3b5a", "agent_beta_0000000000000"
CALLER = "+4915112345678"  # the salon's known customer (Erika Muster)
NEW_CALLER = "+4917612345678"
ACTOR = services.Actor(kind="api")


@dataclass
class Voice:
    salon: Salon
    endpoint: WebhookEndpoint
    other: WebhookEndpoint  # company b's Retell endpoint
    haircut: Any  # a second service at the salon, "Haarschnitt"
    other_customer: Any  # company b's customer with the salon customer's number
    other_appointment: Any


def setup_voice(world: World) -> Voice:
    salon = make_salon(world.a)
    with tenant_context(world.a):
        salon.branch.retell_agent_id = AGENT_A
        salon.branch.save()
        endpoint = WebhookEndpointFactory(provider="retell", secret=KEY_A)
        haircut = ServiceFactory(name="Haarschnitt", duration_minutes=30, slot_interval_minutes=30)
        for member in (salon.staff, salon.other_staff):
            StaffServiceFactory(staff=member, service=haircut)
    with tenant_context(world.b):
        other = WebhookEndpointFactory(provider="retell", secret=KEY_B)
        BranchFactory(name="Beta Mitte", retell_agent_id=AGENT_B)
        other_customer = CustomerFactory(name="Bert Beta", phone=CALLER)
        other_appointment = AppointmentFactory(customer=other_customer)
    return Voice(salon, endpoint, other, haircut, other_customer, other_appointment)


@pytest.fixture
def voice(world: World) -> Voice:
    return setup_voice(world)


def body(
    name: str, args: Any, *, caller: str = CALLER, agent: str = AGENT_A, call_id: str = "call_1"
) -> bytes:
    payload = signing.fixture("retell/function_check_availability")
    payload["name"] = name
    payload["args"] = args
    payload["call"].update(call_id=call_id, agent_id=agent, from_number=caller)
    return json.dumps(payload).encode()


def post(
    endpoint: WebhookEndpoint,
    name: str,
    raw: bytes,
    key: str,
    headers: dict[str, str] | None = None,
) -> Any:
    if headers is None:
        headers = {"HTTP_X_RETELL_SIGNATURE": signing.retell_header(raw, key)}
    return Client().post(
        f"/webhooks/retell/{endpoint.pk}/functions/{name}/",
        raw,
        content_type="application/json",
        **headers,
    )


def tool(voice: Voice, name: str, args: Any = None, **call: Any) -> dict[str, Any]:
    """Call a tool at company a's endpoint; it must answer 200 with a status and a text."""
    response = post(voice.endpoint, name, body(name, args or {}, **call), KEY_A)
    assert response.status_code == 200, response.content
    answer: dict[str, Any] = response.json()
    assert answer["status"]
    assert answer["spoken"]
    return answer


def iso(salon: Salon, hour: int, minute: int = 0, day: Any = None) -> str:
    return salon.at(hour, minute, day).isoformat()


def appointments(company: Any, **filters: Any) -> list[Appointment]:
    with tenant_context(company):
        return list(Appointment.objects.filter(**filters))


# -- signatures and routing ----------------------------------------------------------------


def test_unsigned_stale_or_foreign_signatures_are_401(voice: Voice) -> None:
    raw = body("find_customer", {})
    now_ms = int(time.time() * 1000)
    cases = {
        "missing": {},
        "wrong key": {"HTTP_X_RETELL_SIGNATURE": signing.retell_header(raw, KEY_B)},
        "stale": {"HTTP_X_RETELL_SIGNATURE": signing.retell_header(raw, KEY_A, now_ms - 600_000)},
        "future": {"HTTP_X_RETELL_SIGNATURE": signing.retell_header(raw, KEY_A, now_ms + 600_000)},
        "malformed": {"HTTP_X_RETELL_SIGNATURE": "v=1,d=zz"},
    }
    for case, headers in cases.items():
        response = post(voice.endpoint, "find_customer", raw, KEY_A, headers)
        assert response.status_code == 401, case
        assert response.json()["error"]["code"] == "not_authenticated"


def test_unknown_endpoints_are_404(voice: Voice, world: World) -> None:
    raw = body("find_customer", {})
    with tenant_context(world.a):
        stripe = WebhookEndpoint.objects.get(provider="stripe")
    for endpoint_id in ("8c0e8f8e-9a55-4d8e-9d6c-2f6a7f1f0c11", str(stripe.pk)):
        response = Client().post(
            f"/webhooks/retell/{endpoint_id}/functions/find_customer/",
            raw,
            content_type="application/json",
            HTTP_X_RETELL_SIGNATURE=signing.retell_header(raw, KEY_A),
        )
        assert response.status_code == 404


def test_tool_calls_are_not_stored_in_the_inbox(voice: Voice) -> None:
    tool(voice, "find_customer")
    with all_tenants("test: count inbox rows"):
        assert not WebhookEvent.objects.filter(endpoint_id=voice.endpoint.pk).exists()


def test_an_unknown_agent_or_tool_is_an_answer_not_an_error(voice: Voice) -> None:
    unknown = tool(voice, "find_customer", agent="agent_nobody")
    assert (unknown["status"], unknown["code"]) == ("error", "unknown_agent")
    # Company b's agent is no agent of company a.
    assert tool(voice, "find_customer", agent=AGENT_B)["code"] == "unknown_agent"
    assert tool(voice, "transfer_money")["code"] == "unknown_tool"


def test_an_unexpected_failure_is_a_200_with_an_incident_id(voice: Voice) -> None:
    failing = mock.Mock(side_effect=RuntimeError("boom"))
    with mock.patch.dict("webhooks.tools.views.TOOLS", {"find_customer": failing}):
        answer = tool(voice, "find_customer")
    assert (answer["status"], answer["code"]) == ("error", "internal")
    assert answer["incident"]
    assert "Traceback" not in json.dumps(answer)


# -- arguments -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "args", "field"),
    [
        ("check_availability", {}, "service"),
        ("check_availability", {"service": ""}, "service"),
        ("check_availability", {"service": "Cut", "date": "27.11."}, "date"),
        (
            "check_availability",
            {"service": "Cut", "date": "2030-01-02", "date_to": "2030-01-01"},
            "date_to",
        ),
        ("check_availability", {"service": True}, "service"),
        ("book_appointment", {"service": "Cut", "name": "Max"}, "start"),
        (
            "book_appointment",
            {"service": "Cut", "start": "tomorrow at ten", "name": "Max"},
            "start",
        ),
        ("book_appointment", {"service": "Cut", "start": "2030-01-01T10:00:00+01:00"}, "name"),
        (
            "book_appointment",
            {"service": "Cut", "start": "2030-01-01T10:00", "name": "x" * 300},
            "name",
        ),
        ("cancel_appointment", {}, "confirm_name"),
        (
            "cancel_appointment",
            {"confirm_name": "Erika", "appointment": "the first"},
            "appointment",
        ),
        ("reschedule_appointment", {"confirm_name": "Erika Muster"}, "start"),
    ],
)
def test_bad_arguments_are_a_tool_error_never_a_500(
    voice: Voice, name: str, args: dict[str, Any], field: str
) -> None:
    answer = tool(voice, name, args)
    assert (answer["status"], answer["code"], answer["field"]) == (
        "error",
        "invalid_arguments",
        field,
    )


def test_a_body_without_call_or_with_odd_args_is_a_tool_error(voice: Voice) -> None:
    for raw in (b"not json", b"[]", json.dumps({"name": "x", "args": {}}).encode()):
        response = post(voice.endpoint, "check_availability", raw, KEY_A)
        assert response.status_code == 200
        assert response.json()["code"] == "invalid_arguments"
    raw = body("check_availability", ["Cut"])
    assert post(voice.endpoint, "check_availability", raw, KEY_A).json()["code"] == (
        "invalid_arguments"
    )


# -- find_customer -------------------------------------------------------------------------


def test_find_customer_knows_the_caller_by_number(voice: Voice) -> None:
    salon = voice.salon
    with tenant_context(salon.company):
        services.book_appointment(
            service=salon.service,
            staff=salon.staff,
            start=salon.at(10),
            customer=salon.customer,
            actor=ACTOR,
        )
    answer = tool(voice, "find_customer", caller="0151 12345678")  # national format
    assert answer["known"] is True
    assert answer["customer"]["name"] == "Erika Muster"
    assert answer["customer"]["upcoming"] == 1
    assert "Erika Muster" in answer["spoken"]
    assert "einen anstehenden Termin" in answer["spoken"]


def test_find_customer_new_and_withheld_callers(voice: Voice) -> None:
    new = tool(voice, "find_customer", caller=NEW_CALLER)
    assert (new["known"], new["withheld"], new["customer"]) == (False, False, None)
    for withheld in ("anonymous", "", "private"):
        answer = tool(voice, "find_customer", caller=withheld)
        assert (answer["known"], answer["withheld"]) == (False, True)
        assert "unterdrückt" in answer["spoken"]


def test_answers_are_english_outside_german_speaking_countries(voice: Voice) -> None:
    with tenant_context(voice.salon.company):
        voice.salon.branch.country = "GB"
        voice.salon.branch.save()
    answer = tool(voice, "find_customer", caller="+4915112345678")
    assert answer["spoken"].startswith("Welcome back, Erika Muster")


# -- check_availability --------------------------------------------------------------------


def test_check_availability_offers_a_few_slots_spread_over_the_day_and_staff(voice: Voice) -> None:
    salon = voice.salon
    answer = tool(
        voice, "check_availability", {"service": "Haarschnitt", "date": salon.day.isoformat()}
    )
    assert answer["status"] == "ok"
    starts = [slot["start"] for slot in answer["slots"]]
    assert starts == [iso(salon, 9), iso(salon, 13), iso(salon, 16, 30)]
    assert starts[0].endswith(("+01:00", "+02:00"))  # the branch's offset
    assert {slot["staff"] for slot in answer["slots"]} == {salon.staff.pk, salon.other_staff.pk}
    assert answer["service"] == {"id": voice.haircut.pk, "name": "Haarschnitt"}
    assert answer["spoken"].startswith("Frei ist am ")
    assert "um 9 Uhr bei Anna" in answer["spoken"]
    assert all(slot["spoken"] for slot in answer["slots"])


@pytest.mark.parametrize(
    "said",
    ["Haarschnitt", "haarschnitt", "HAARSCHNIT", "Haarschnit", "Háarschnitt", "haarschnitt "],
)
def test_services_are_found_by_what_the_caller_said(voice: Voice, said: str) -> None:
    answer = tool(
        voice, "check_availability", {"service": said, "date": voice.salon.day.isoformat()}
    )
    assert answer["service"]["id"] == voice.haircut.pk


@pytest.mark.parametrize("said", ["Jonas", "jonas", "JONAS", "Jonaas"])
def test_staff_are_found_by_name_case_and_small_misspellings(voice: Voice, said: str) -> None:
    salon = voice.salon
    answer = tool(
        voice,
        "check_availability",
        {"service": "Cut", "staff": said, "date": salon.day.isoformat()},
    )
    assert {slot["staff"] for slot in answer["slots"]} == {salon.other_staff.pk}
    assert "bei Jonas" in answer["spoken"]


def test_services_and_staff_by_id(voice: Voice) -> None:
    salon = voice.salon
    answer = tool(
        voice,
        "check_availability",
        {"service": str(salon.service.pk), "staff": salon.staff.pk, "date": salon.day.isoformat()},
    )
    assert answer["service"]["id"] == salon.service.pk
    assert {slot["staff"] for slot in answer["slots"]} == {salon.staff.pk}


def test_an_unknown_or_ambiguous_name_is_answered_with_the_options(voice: Voice) -> None:
    unknown = tool(voice, "check_availability", {"service": "Massage"})
    assert unknown["code"] == "unknown_service"
    assert {o["name"] for o in unknown["options"]} == {"Cut", "Haarschnitt"}
    assert "Cut" in unknown["spoken"]
    with tenant_context(voice.salon.company):
        for name in ("Farbe kurz", "Farbe lang"):
            StaffServiceFactory(staff=voice.salon.staff, service=ServiceFactory(name=name))
    ambiguous = tool(voice, "check_availability", {"service": "Farbe"})
    assert ambiguous["code"] == "ambiguous_service"
    assert {o["name"] for o in ambiguous["options"]} == {"Farbe kurz", "Farbe lang"}
    nobody = tool(voice, "check_availability", {"service": "Cut", "staff": "Zoe"})
    assert nobody["code"] == "unknown_staff"


def test_another_companys_service_id_is_unknown(voice: Voice, world: World) -> None:
    with tenant_context(world.b):
        foreign = ServiceFactory(name="Cut")
    answer = tool(voice, "check_availability", {"service": foreign.pk})
    assert answer["code"] == "unknown_service"


def test_a_closed_day_names_the_next_open_days(voice: Voice) -> None:
    salon = voice.salon
    with tenant_context(salon.company):
        ClosureFactory(branch=salon.branch, start_date=salon.day, end_date=salon.day)
    answer = tool(voice, "check_availability", {"service": "Cut", "date": salon.day.isoformat()})
    assert (answer["status"], answer["code"]) == ("error", "closed")
    following = [d["date"] for d in answer["next_days"]]
    assert following[0] == (salon.day + timedelta(days=1)).isoformat()
    assert len(following) == 3
    assert "geschlossen" in answer["spoken"]
    assert "Freie Termine gibt es wieder" in answer["spoken"]


def test_a_fully_booked_day_is_no_slots_with_the_next_open_days(voice: Voice) -> None:
    salon = voice.salon
    with tenant_context(salon.company):
        for member in (salon.staff, salon.other_staff):
            TimeOffFactory(staff=member, start=salon.at(0), end=salon.at(23, 59))
    answer = tool(voice, "check_availability", {"service": "Cut", "date": salon.day.isoformat()})
    assert answer["code"] == "no_slots"
    assert answer["next_days"][0]["date"] == (salon.day + timedelta(days=1)).isoformat()


def test_a_day_nobody_works_is_closed(voice: Voice) -> None:
    salon = voice.salon
    with tenant_context(salon.company):
        for member in (salon.staff, salon.other_staff):
            member.working_hours.filter(weekday=salon.day.weekday()).delete()
    answer = tool(voice, "check_availability", {"service": "Cut", "date": salon.day.isoformat()})
    assert answer["code"] == "closed"
    assert answer["next_days"][0]["date"] == (salon.day + timedelta(days=1)).isoformat()


# -- book_appointment ----------------------------------------------------------------------


def book_args(salon: Salon, hour: int = 10, **extra: Any) -> dict[str, Any]:
    return {"service": "Cut", "start": iso(salon, hour), "name": "Max Neu", **extra}


def test_book_appointment_creates_the_customer_and_books_by_phone(voice: Voice) -> None:
    salon = voice.salon
    answer = tool(voice, "book_appointment", book_args(salon), caller=NEW_CALLER)
    assert answer["status"] == "booked"
    assert answer["appointment"]["start"] == iso(salon, 10)
    assert answer["spoken"].startswith("Ihr Termin ist gebucht: Cut am ")
    (booked,) = appointments(salon.company, pk=answer["appointment"]["id"])
    assert booked.source == AppointmentSource.PHONE
    assert booked.status == AppointmentStatus.CONFIRMED
    assert booked.idempotency_key.startswith("retell:call_1:")
    with tenant_context(salon.company):
        assert booked.customer.phone == NEW_CALLER
        assert booked.customer.name == "Max Neu"
        assert booked.history.get().actor == "phone"


def test_book_appointment_picks_a_free_staff_member_or_the_one_asked_for(voice: Voice) -> None:
    salon = voice.salon
    with tenant_context(salon.company):
        services.book_appointment(
            service=salon.service,
            staff=salon.staff,
            start=salon.at(10),
            customer=salon.customer,
            actor=ACTOR,
        )
    free = tool(voice, "book_appointment", book_args(salon), caller=NEW_CALLER)
    assert free["appointment"]["staff"] == salon.other_staff.pk
    asked = tool(voice, "book_appointment", book_args(salon, 11, staff="anna"), caller=NEW_CALLER)
    assert asked["appointment"]["staff"] == salon.staff.pk


def test_a_known_caller_keeps_their_record(voice: Voice) -> None:
    salon = voice.salon
    answer = tool(voice, "book_appointment", {**book_args(salon), "name": "Erika Muster"})
    with tenant_context(salon.company):
        assert Customer.objects.filter(phone=CALLER).count() == 1
        booked = Appointment.objects.get(pk=answer["appointment"]["id"])
        assert booked.customer_id == salon.customer.pk
        assert booked.notes == ""


def test_book_appointment_repeated_three_times_books_once(voice: Voice) -> None:
    salon = voice.salon
    answers = [
        tool(voice, "book_appointment", book_args(salon), caller=NEW_CALLER) for _ in range(3)
    ]
    assert {a["status"] for a in answers} == {"booked"}
    assert len({a["appointment"]["id"] for a in answers}) == 1
    assert len(appointments(salon.company, start=salon.at(10))) == 1
    with tenant_context(salon.company):
        assert Customer.objects.filter(phone=NEW_CALLER).count() == 1


def test_another_call_booking_the_same_slot_is_refused(voice: Voice) -> None:
    salon = voice.salon
    with tenant_context(salon.company):
        salon.other_staff.active = False
        salon.other_staff.save()
    tool(voice, "book_appointment", book_args(salon), caller=NEW_CALLER)
    second = tool(voice, "book_appointment", book_args(salon), call_id="call_2")
    assert second["code"] == "slot_taken"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrency needs PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_book_appointment_three_times_concurrently_books_once(world: World) -> None:
    voice = setup_voice(world)
    salon = voice.salon
    raw = body("book_appointment", book_args(salon), caller=NEW_CALLER)
    barrier = threading.Barrier(3)
    answers: list[Any] = []
    lock = threading.Lock()

    def attempt() -> None:
        try:
            barrier.wait()
            response = post(voice.endpoint, "book_appointment", raw, KEY_A)
            with lock:
                answers.append((response.status_code, response.json()))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=attempt) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [code for code, _ in answers] == [200, 200, 200]
    assert {a["status"] for _, a in answers} == {"booked"}, answers
    assert len({a["appointment"]["id"] for _, a in answers}) == 1
    assert len(appointments(salon.company, start=salon.at(10))) == 1
    with tenant_context(salon.company):
        assert Customer.objects.filter(phone=NEW_CALLER).count() == 1


def test_a_taken_slot_is_answered_with_nearby_alternatives(voice: Voice) -> None:
    salon = voice.salon
    with tenant_context(salon.company):
        for member in (salon.staff, salon.other_staff):
            services.book_appointment(
                service=salon.service,
                staff=member,
                start=salon.at(10),
                customer=salon.customer,
                actor=ACTOR,
            )
    answer = tool(voice, "book_appointment", book_args(salon), caller=NEW_CALLER)
    assert (answer["status"], answer["code"]) == ("error", "slot_taken")
    starts = [alt["start"] for alt in answer["alternatives"]]
    assert starts == [iso(salon, 9), iso(salon, 9, 30), iso(salon, 10, 30)]  # nearest first
    assert "gerade vergeben" in answer["spoken"]
    assert "Ich hätte" in answer["spoken"]
    with tenant_context(salon.company):
        assert not Customer.objects.filter(phone=NEW_CALLER).exists()  # no orphan


def test_a_time_off_the_grid_or_in_the_past_is_refused(voice: Voice) -> None:
    salon = voice.salon
    odd = tool(
        voice,
        "book_appointment",
        {**book_args(salon), "start": iso(salon, 10, 10)},
        caller=NEW_CALLER,
    )
    assert odd["code"] == "unavailable"
    assert odd["alternatives"]
    past = tool(
        voice,
        "book_appointment",
        {**book_args(salon), "start": iso(salon, 10, 0, salon.day - timedelta(days=10))},
    )
    assert past["code"] == "outside_window"


def test_booking_on_a_closed_day_names_the_next_open_days(voice: Voice) -> None:
    salon = voice.salon
    with tenant_context(salon.company):
        ClosureFactory(branch=salon.branch, start_date=salon.day, end_date=salon.day)
    answer = tool(voice, "book_appointment", book_args(salon), caller=NEW_CALLER)
    assert answer["code"] == "closed"
    assert answer["next_days"]


def test_a_start_without_offset_is_branch_time(voice: Voice) -> None:
    salon = voice.salon
    naive = salon.at(10).replace(tzinfo=None).isoformat()
    answer = tool(
        voice, "book_appointment", {**book_args(salon), "start": naive}, caller=NEW_CALLER
    )
    assert answer["appointment"]["start"] == iso(salon, 10)


def test_a_withheld_number_can_book_once_per_call(voice: Voice) -> None:
    salon = voice.salon
    answers = [
        tool(voice, "book_appointment", book_args(salon), caller="anonymous") for _ in range(2)
    ]
    assert {a["status"] for a in answers} == {"booked"}
    assert answers[0]["appointment"]["id"] == answers[1]["appointment"]["id"]
    with tenant_context(salon.company):
        booked = Appointment.objects.select_related("customer").get(
            pk=answers[0]["appointment"]["id"]
        )
        assert booked.customer.phone == ""
        assert booked.customer.name == "Max Neu"
        assert Customer.objects.filter(name="Max Neu").count() == 1


@pytest.fixture
def calendar_down(voice: Voice, settings: Any) -> Any:
    settings.CALCOM_API_BASE = "http://127.0.0.1:9/v2"  # nothing there, and the breaker is open
    with tenant_context(voice.salon.company):
        connect("calcom", "cal_live_salon")
        voice.salon.service.calcom_event_type_id = 1187
        voice.salon.service.save()
    reset_stores()
    get_breaker("calcom").force("open")
    try:
        yield voice
    finally:
        get_breaker("calcom").force("reset")
        reset_stores()


def test_with_the_calendar_unreachable_the_booking_is_pending(calendar_down: Voice) -> None:
    salon = calendar_down.salon
    started = time.perf_counter()
    answer = tool(calendar_down, "book_appointment", book_args(salon), caller=NEW_CALLER)
    assert time.perf_counter() - started < 3
    assert answer["status"] == "pending"
    assert "Bestätigung folgt" in answer["spoken"]
    (booked,) = appointments(salon.company, pk=answer["appointment"]["id"])
    assert booked.status == AppointmentStatus.PENDING
    assert booked.calendar_sync == CalendarSync.PENDING
    again = tool(calendar_down, "book_appointment", book_args(salon), caller=NEW_CALLER)
    assert (again["status"], again["appointment"]["id"]) == ("pending", booked.pk)
    slots = tool(
        calendar_down, "check_availability", {"service": "Cut", "date": salon.day.isoformat()}
    )
    assert slots["status"] == "ok"


# -- the caller's own appointments ---------------------------------------------------------


def erikas(salon: Salon, *hours: int) -> list[Appointment]:
    with tenant_context(salon.company):
        return [
            services.book_appointment(
                service=salon.service,
                staff=salon.staff,
                start=salon.at(hour),
                customer=salon.customer,
                actor=ACTOR,
            )
            for hour in hours
        ]


def test_list_my_appointments(voice: Voice) -> None:
    salon = voice.salon
    first, second = erikas(salon, 10, 14)
    answer = tool(voice, "list_my_appointments")
    assert [a["id"] for a in answer["appointments"]] == [first.pk, second.pk]
    assert answer["spoken"].startswith("Sie haben 2 anstehende Termine: Cut am ")
    assert tool(voice, "list_my_appointments", caller=NEW_CALLER)["appointments"] == []
    wrong = tool(voice, "list_my_appointments", {"confirm_name": "Bert Beta"})
    assert wrong["code"] == "name_mismatch"
    assert tool(voice, "list_my_appointments", caller="anonymous")["code"] == "number_withheld"


def test_cancel_the_only_appointment_with_the_name_on_the_booking(voice: Voice) -> None:
    salon = voice.salon
    (booked,) = erikas(salon, 10)
    answer = tool(voice, "cancel_appointment", {"confirm_name": "erika muster"})
    assert (answer["status"], answer["appointment"]["id"]) == ("cancelled", booked.pk)
    assert "abgesagt" in answer["spoken"]
    (cancelled,) = appointments(salon.company, pk=booked.pk)
    assert cancelled.status == AppointmentStatus.CANCELLED
    # Retell's retry of the same cancel is answered the same way.
    assert tool(voice, "cancel_appointment", {"confirm_name": "Erika Muster"})["status"] == (
        "cancelled"
    )
    assert tool(voice, "cancel_appointment", {"confirm_name": "Muster", "appointment": booked.pk})[
        "status"
    ] == ("cancelled")


def test_cancel_with_the_wrong_name_is_refused(voice: Voice) -> None:
    salon = voice.salon
    (booked,) = erikas(salon, 10)
    for name in ("Max Mustermann", "Erika", "Bert Beta"):
        answer = tool(voice, "cancel_appointment", {"confirm_name": name})
        assert (answer["status"], answer["code"]) == ("error", "name_mismatch"), name
    (kept,) = appointments(salon.company, pk=booked.pk)
    assert kept.status == AppointmentStatus.CONFIRMED
    moved = tool(voice, "reschedule_appointment", {"confirm_name": "Max", "start": iso(salon, 14)})
    assert moved["code"] == "name_mismatch"


def test_several_appointments_need_the_one_meant(voice: Voice) -> None:
    salon = voice.salon
    first, second = erikas(salon, 10, 14)
    answer = tool(voice, "cancel_appointment", {"confirm_name": "Erika Muster"})
    assert answer["code"] == "choose_appointment"
    assert [a["id"] for a in answer["appointments"]] == [first.pk, second.pk]
    chosen = tool(
        voice, "cancel_appointment", {"confirm_name": "Erika Muster", "appointment": second.pk}
    )
    assert chosen["appointment"]["id"] == second.pk


def test_a_withheld_number_can_neither_cancel_nor_move(voice: Voice) -> None:
    salon = voice.salon
    (booked,) = erikas(salon, 10)
    for name, args in (
        ("cancel_appointment", {"confirm_name": "Erika Muster", "appointment": booked.pk}),
        (
            "reschedule_appointment",
            {"confirm_name": "Erika Muster", "appointment": booked.pk, "start": iso(salon, 14)},
        ),
    ):
        answer = tool(voice, name, args, caller="anonymous")
        assert answer["code"] == "number_withheld"
    (kept,) = appointments(salon.company, pk=booked.pk)
    assert (kept.status, kept.start) == (AppointmentStatus.CONFIRMED, salon.at(10))


def test_reschedule_moves_the_same_appointment(voice: Voice) -> None:
    salon = voice.salon
    (booked,) = erikas(salon, 10)
    args = {"confirm_name": "Erika Muster", "start": iso(salon, 10, 30)}  # overlaps itself
    answer = tool(voice, "reschedule_appointment", args)
    assert (answer["status"], answer["appointment"]["id"]) == ("rescheduled", booked.pk)
    assert answer["appointment"]["start"] == iso(salon, 10, 30)
    assert "verschoben" in answer["spoken"]
    (moved,) = appointments(salon.company, pk=booked.pk)
    assert moved.start == salon.at(10, 30)
    assert tool(voice, "reschedule_appointment", args)["status"] == "rescheduled"  # a retry


def test_reschedule_onto_a_taken_time_offers_alternatives(voice: Voice) -> None:
    salon = voice.salon
    (booked,) = erikas(salon, 10)
    with tenant_context(salon.company):
        other = CustomerFactory(name="Someone Else")
        for member in (salon.staff, salon.other_staff):
            services.book_appointment(
                service=salon.service, staff=member, start=salon.at(14), customer=other, actor=ACTOR
            )
    answer = tool(
        voice, "reschedule_appointment", {"confirm_name": "Erika Muster", "start": iso(salon, 14)}
    )
    assert answer["code"] == "slot_taken"
    assert answer["alternatives"]
    (kept,) = appointments(salon.company, pk=booked.pk)
    assert kept.start == salon.at(10)


def test_another_companys_customers_and_appointments_are_unreachable(voice: Voice) -> None:
    salon = voice.salon
    foreign = voice.other_appointment
    # Company b's customer has the same number as Erika: company a only knows Erika.
    found = tool(voice, "find_customer")
    assert found["customer"]["name"] == "Erika Muster"
    # Company b's appointment id, asked for at company a's endpoint, is not the caller's.
    (mine,) = erikas(salon, 10)
    answer = tool(
        voice,
        "cancel_appointment",
        {"confirm_name": "Erika Muster", "appointment": foreign.pk},
    )
    assert answer["code"] == "appointment_not_found"
    assert "Bert" not in json.dumps(tool(voice, "list_my_appointments"))
    # Bert's name is no key to company a's records either.
    assert tool(voice, "cancel_appointment", {"confirm_name": "Bert Beta"})["code"] == (
        "name_mismatch"
    )
    with tenant_context(voice.other_customer.company):
        assert Appointment.objects.get(pk=foreign.pk).status == AppointmentStatus.CONFIRMED
    # Company b's endpoint, signed with b's key, only sees company b.
    raw = body("list_my_appointments", {}, agent=AGENT_B)
    theirs = post(voice.other, "list_my_appointments", raw, KEY_B).json()
    assert [a["id"] for a in theirs["appointments"]] == [foreign.pk]
    assert mine.pk not in [a["id"] for a in theirs["appointments"]]


# -- matching ------------------------------------------------------------------------------


def test_normalize_folds_case_accents_and_punctuation() -> None:
    assert normalize("  Fußpflege / Ärztin! ") == "fusspflege arztin"
    assert normalize("JONAS") == normalize("jonas") == "jonas"


def test_best_match_rules() -> None:
    names = [(1, "Haarschnitt"), (2, "Haarschnitt Kinder"), (3, "Färben"), (4, "Bart")]
    assert best_match("haarschnitt", names).found == 1  # exact beats prefix
    assert best_match("farben", names).found == 3
    assert best_match("Kinder", names).found == 2  # a word of the name
    assert best_match("Haarschn", names).options == [1, 2]
    assert best_match("Baart", names).found == 4
    assert best_match("Massage", names).found is None
    assert not best_match("", names).options


def test_names_match_whole_name_or_surname() -> None:
    assert names_match("erika muster", "Erika Muster")
    assert names_match("Muster", "Erika Muster")
    assert names_match("Erika Mustr", "Erika Muster")
    assert not names_match("Erika", "Erika Muster")
    assert not names_match("Max Mustermann", "Erika Muster")
    assert not names_match("", "Erika Muster")
