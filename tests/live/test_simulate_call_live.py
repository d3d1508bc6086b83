"""`simulate_call` end to end: the simulator plays Retell against gunicorn and workers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection

from bookings.models import Appointment
from integrations.breakers import reset_stores
from integrations.simulator import ProviderSimulator
from tenants.context import tenant_context
from tests.conftest import World, make_salon
from tests.live.harness import LiveStack
from webhooks.models import CallLog

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="live stack"),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def sim(settings: Any) -> Iterator[ProviderSimulator]:
    with ProviderSimulator() as simulator:
        settings.RETELL_API_BASE = simulator.base("retell")
        reset_stores()
        yield simulator
    reset_stores()


def test_a_simulated_call_books_and_ends_with_a_linked_call_log(
    world: World, live: LiveStack, sim: ProviderSimulator, settings: Any
) -> None:
    salon = make_salon(world.a)
    live.start_web()
    live.start_worker()
    settings.PUBLIC_BASE_URL = live.base_url
    out = StringIO()
    call_command(
        "simulate_call",
        "--branch",
        str(salon.branch.pk),
        "--simulator",
        sim.url,
        "--json",
        stdout=out,
    )
    trace = json.loads(out.getvalue())
    steps = [step["step"] for step in trace]
    for expected in (
        "inbound",
        "call_started",
        "find_customer",
        "check_availability",
        "book_appointment",
        "call_ended",
        "call_analyzed",
    ):
        assert expected in steps
    statuses = {s["step"]: s.get("status") for s in trace if "status" in s}
    assert statuses["book_appointment"] == 200
    result = trace[-1]
    assert result["ok"] is True
    with tenant_context(world.a):
        appointment = Appointment.objects.get(pk=result["appointment"])
        assert appointment.source == "phone"
        assert appointment.customer.phone == "+4915112345678"
        log = CallLog.objects.get(pk=result["call_log"])
        assert log.appointment_id == appointment.pk
    # Every request AskPro got was signed by the simulator as Retell signs.
    assert all(s.get("status") in (200, 202) for s in trace if "status" in s)
