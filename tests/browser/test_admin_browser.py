"""The admin in a real browser: a company's manager runs a day's work, another company's
owner sees none of it.

Chromium (Debian's, headless) drives gunicorn serving the test database as the app role;
see conftest.py. Each step leaves a screenshot in ``test-artifacts/browser/`` for people;
the assertions are on page content and on the database.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import connection
from playwright.sync_api import Page, expect

from bookings.models import Appointment, AppointmentStatus, Customer
from tenants.context import tenant_context
from tenants.models import Role
from tests import signing
from tests.browser.conftest import StartingStack
from tests.conftest import Salon, World
from tests.factories import (
    AppointmentFactory,
    CustomerFactory,
    MembershipFactory,
    WebhookEndpointFactory,
    WebhookEventFactory,
)
from webhooks.models import CallLog, EventStatus, WebhookEndpoint, WebhookEvent

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="live stack: PostgreSQL"),
    # gunicorn must see the test's rows: no wrapping transaction.
    pytest.mark.django_db(transaction=True),
]

PASSWORD = "Browser-test-pw-1"


def set_password(user: Any) -> None:
    """A hash gunicorn can check: the test profile hashes with MD5, which production
    settings don't accept."""
    hasher = PBKDF2PasswordHasher()
    # Few iterations: gunicorn accepts it and upgrades the hash at the first login.
    user.password = hasher.encode(PASSWORD, hasher.salt(), iterations=1000)
    user.save(update_fields=["password"])


@dataclass
class Seeded:
    mine: Appointment  # company a's, to be cancelled
    theirs: Appointment  # company b's
    dead: WebhookEvent  # company a's dead letter
    manager: Any


def seed(world: World, salon: Salon) -> Seeded:
    manager = MembershipFactory(company=world.a, role=Role.MANAGER, user__username="manager_a")
    set_password(manager.user)
    set_password(world.outsider)
    with tenant_context(world.a):
        mine = AppointmentFactory(
            staff=salon.staff,
            service=salon.service,
            branch=salon.branch,
            customer=CustomerFactory(name="Alma Alphakundin"),
            start=salon.at(11),
            end=salon.at(11, 30),
            busy_until=salon.at(11, 30),
        )
        endpoint = WebhookEndpoint.objects.filter(
            provider="retell"
        ).first() or WebhookEndpointFactory(provider="retell")
        call = {**signing.fixture("retell/call_started")["call"], "call_id": "call_browser_1"}
        dead = WebhookEventFactory(
            endpoint=endpoint,
            provider="retell",
            event_type="call_started",
            dedup_key="call_started:call_browser_1",
            payload={"event": "call_started", "call": call},
            status=EventStatus.DEAD,
            attempts=5,
            last_error="ConnectionError: database went away (simulated)",
        )
    with tenant_context(world.b):
        b = world.rows["b"]
        theirs = AppointmentFactory(
            staff=b[type(mine.staff)],
            service=b[type(mine.service)],
            customer=CustomerFactory(name="Bruno Betakunde"),
        )
    return Seeded(mine=mine, theirs=theirs, dead=dead, manager=manager.user)


class Steps:
    """Numbered screenshots, one per step; a failing step leaves ``…-FAILED.png``.
    How long each step took goes to ``steps.txt`` beside them."""

    def __init__(self, page: Page, directory: Path) -> None:
        self.page, self.directory, self.number = page, directory, 0

    @contextmanager
    def __call__(self, name: str) -> Iterator[Page]:
        self.number += 1
        stem = f"{self.number:02d}-{name}"
        started = time.monotonic()
        outcome = "ok"
        try:
            yield self.page
        except BaseException:
            outcome = "FAILED"
            stem += "-FAILED"
            raise
        finally:
            self.page.screenshot(path=self.directory / f"{stem}.png", full_page=True)
            with (self.directory / "steps.txt").open("a") as log:
                log.write(f"{stem:50} {time.monotonic() - started:6.2f} s  {outcome}\n")


def log_in(page: Page, username: str) -> None:
    page.goto("/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#user-tools")).to_contain_text(username, ignore_case=True)


def run_action(page: Page, action: str, pk: int) -> None:
    """Tick one row of a changelist and run an admin action on it."""
    page.check(f"input[name=_selected_action][value='{pk}']")
    page.select_option("select[name=action]", action)
    page.click("button[name=index]")


def listed_pks(page: Page) -> set[int]:
    """The primary keys of a changelist's rows (their action checkboxes)."""
    rows = page.locator("input[name=_selected_action]")
    expect(rows.first).to_be_attached()  # the list isn't empty: something is shown
    return {int(value) for value in rows.evaluate_all("boxes => boxes.map(b => b.value)")}


def reload(obj: Any) -> Any:
    with tenant_context(obj.company_id):
        obj.refresh_from_db()
    return obj


def test_a_manager_works_in_the_admin_and_another_company_sees_none_of_it(
    live: StartingStack, world: World, salon: Salon, page: Page, artifacts: Path
) -> None:
    """gunicorn (started first, see conftest.py) serves it all; the rows are written
    here, and gunicorn reads them per request."""
    seeded = seed(world, salon)
    step = Steps(page, artifacts)
    appointments = "/admin/bookings/appointment/"

    with step("manager-logs-in"):
        log_in(page, "manager_a")
        expect(page.locator("#site-name")).to_contain_text("AskPro")

    with step("appointments-of-company-a-only"):
        page.goto(appointments)
        results = page.locator("#result_list")
        expect(results).to_contain_text("Alma Alphakundin")  # the page is there
        expect(results).to_contain_text(str(world.rows["a"][Customer]))
        assert "Bruno Betakunde" not in page.content()
        with tenant_context(world.a):
            assert listed_pks(page) == set(Appointment.objects.values_list("pk", flat=True))
        assert seeded.theirs.pk not in listed_pks(page)
        assert page.locator(f"a[href$='/appointment/{seeded.theirs.pk}/change/']").count() == 0

    with step("book-appointment-form") as p:
        p.goto(appointments + "add/")
        p.select_option("#id_staff", str(salon.staff.pk))
        p.select_option("#id_service", str(salon.service.pk))
        # The customer field is select2 over /admin/autocomplete/: needs the admin's JS.
        p.click("[aria-labelledby=select2-id_customer-container]")
        p.fill(".select2-search__field", "Erika")
        p.click(".select2-results__option >> text=Erika Muster")
        start = salon.at(14)
        p.fill("#id_start_0", start.strftime("%Y-%m-%d"))
        p.fill("#id_start_1", start.strftime("%H:%M:%S"))
        p.fill("#id_notes", "Booked in the browser test")

    with step("appointment-booked") as p:
        p.click("input[name=_save]")
        expect(p.locator(".messagelist .success")).to_contain_text("was added successfully")
        expect(p.locator("#result_list")).to_contain_text("Erika Muster")
        with tenant_context(world.a):
            booked = Appointment.objects.get(customer=salon.customer)
            assert booked.start == start
            assert booked.staff_id == salon.staff.pk
            assert booked.source == "admin"
            assert booked.status == AppointmentStatus.CONFIRMED
            assert booked.history.filter(actor=f"user:{seeded.manager.pk}").exists()

    with step("appointment-cancelled") as p:
        run_action(p, "cancel_selected", seeded.mine.pk)
        expect(p.locator(".messagelist .success")).to_contain_text("1 appointment(s) cancelled")
        assert reload(seeded.mine).status == AppointmentStatus.CANCELLED
        assert reload(booked).status == AppointmentStatus.CONFIRMED  # only the ticked one

    with step("dead-webhook-listed") as p:
        p.goto("/admin/webhooks/webhookevent/?status__exact=dead")
        row = p.locator(f"tr:has(input[name=_selected_action][value='{seeded.dead.pk}'])")
        expect(row).to_contain_text("call_started")
        expect(row).to_contain_text("Dead")

    with step("dead-webhook-replayed") as p:
        run_action(p, "replay", seeded.dead.pk)
        expect(p.locator(".messagelist .info")).to_contain_text("Replayed 1 event(s); 1 processed")
        event = reload(seeded.dead)
        assert event.status == EventStatus.PROCESSED
        assert event.attempts == 1
        assert event.last_error == ""
        with tenant_context(world.a):
            assert CallLog.objects.filter(call_id="call_browser_1").exists()
        p.goto("/admin/webhooks/webhookevent/")  # the whole inbox, for the screenshot
        expect(p.locator(f"tr:has(input[value='{seeded.dead.pk}'])")).to_contain_text("Processed")

    with step("manager-logged-out") as p:
        # Django 5 logs out with a POST: the form in the user tools.
        p.click("#logout-form button")
        expect(p.locator("#content")).to_contain_text(re.compile("logged out", re.IGNORECASE))

    # --- company b's owner ---------------------------------------------------------------
    a_names = ["Alma Alphakundin", "Erika Muster", str(world.rows["a"][Customer])]
    with tenant_context(world.a):
        a_pks = {
            appointments: set(Appointment.objects.values_list("pk", flat=True)),
            "/admin/bookings/customer/": set(Customer.objects.values_list("pk", flat=True)),
            "/admin/webhooks/webhookevent/": set(WebhookEvent.objects.values_list("pk", flat=True)),
        }

    with step("other-company-logs-in"):
        log_in(page, world.outsider.username)

    for name, path in [
        ("other-company-appointments", appointments),
        ("other-company-customers", "/admin/bookings/customer/"),
        ("other-company-webhook-events", "/admin/webhooks/webhookevent/"),
    ]:
        with step(name) as p:
            response = p.goto(path)
            assert response is not None
            assert response.status == 200
            shown = listed_pks(p) & a_pks[path]  # company b's own rows are listed
            assert not shown, (path, shown)
            text = p.content()
            for a_name in a_names:
                assert a_name not in text
            if path != "/admin/webhooks/webhookevent/":
                expect(p.locator("#result_list")).to_contain_text("Bruno Betakunde")

    with tenant_context(world.a):
        a_customer = Customer.objects.get(name="Alma Alphakundin")
    for name, path in [
        ("other-company-direct-appointment-url", f"{appointments}{seeded.mine.pk}/change/"),
        ("other-company-direct-booked-url", f"{appointments}{booked.pk}/change/"),
        ("other-company-direct-customer-url", f"/admin/bookings/customer/{a_customer.pk}/change/"),
        (
            "other-company-direct-webhook-url",
            f"/admin/webhooks/webhookevent/{seeded.dead.pk}/change/",
        ),
    ]:
        with step(name) as p:
            response = p.goto(path)
            assert response is not None
            assert response.status == 404, path
            text = p.content()
            for a_name in a_names:
                assert a_name not in text
            assert "call_browser_1" not in text
