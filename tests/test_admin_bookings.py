"""The admin as the staff's daily tool: booking through the rules, actions, shortcuts."""

from __future__ import annotations

from typing import Any

from django.test import Client
from django.urls import reverse

from bookings.models import Appointment, AppointmentStatus
from tenants.context import tenant_context
from tests.conftest import Salon, World, login

ADD = reverse("admin:bookings_appointment_add")
CHANGELIST = reverse("admin:bookings_appointment_changelist")


def _form(salon: Salon, hour: int) -> dict[str, Any]:
    start = salon.at(hour)
    return {
        "staff": salon.staff.pk,
        "service": salon.service.pk,
        "customer": salon.customer.pk,
        "start_0": start.strftime("%Y-%m-%d"),
        "start_1": start.strftime("%H:%M:%S"),
        "notes": "",
        "history-TOTAL_FORMS": 0,
        "history-INITIAL_FORMS": 0,
    }


def test_booking_in_the_admin_goes_through_the_booking_rules(world: World, salon: Salon) -> None:
    client = login(world.staff_a)
    response = client.post(ADD, _form(salon, 10))
    assert response.status_code == 302, response.context["adminform"].form.errors
    with tenant_context(salon.company):
        appointment = Appointment.objects.get(customer=salon.customer)
        assert appointment.start == salon.at(10)  # the form's times are the company's zone
        assert appointment.source == "admin"
        assert list(appointment.history.values_list("actor", flat=True)) == [
            f"user:{world.staff_a.pk}"
        ]


def test_a_refused_time_comes_back_as_a_form_error(world: World, salon: Salon) -> None:
    client = login(world.owner_a)
    client.post(ADD, _form(salon, 10))
    taken = client.post(ADD, _form(salon, 10))
    assert taken.status_code == 200
    assert "just taken" in str(taken.context["adminform"].form.errors)
    closed = client.post(ADD, _form(salon, 20))
    assert "not available" in str(closed.context["adminform"].form.errors)


def test_the_cancel_action_cancels_through_the_service(world: World, salon: Salon) -> None:
    client = login(world.owner_a)
    client.post(ADD, _form(salon, 10))
    with tenant_context(salon.company):
        appointment = Appointment.objects.get(customer=salon.customer)
    client.post(CHANGELIST, {"action": "cancel_selected", "_selected_action": [appointment.pk]})
    with tenant_context(salon.company):
        appointment.refresh_from_db()
        assert appointment.status == AppointmentStatus.CANCELLED
        assert appointment.history.filter(action="cancelled").exists()


def test_moving_an_appointment_in_the_admin_reschedules_it(world: World, salon: Salon) -> None:
    client = login(world.owner_a)
    client.post(ADD, _form(salon, 10))
    with tenant_context(salon.company):
        appointment = Appointment.objects.get(customer=salon.customer)
    form = _form(salon, 14)
    del form["service"], form["customer"]
    response = client.post(
        reverse("admin:bookings_appointment_change", args=[appointment.pk]), form
    )
    assert response.status_code == 302
    with tenant_context(salon.company):
        appointment.refresh_from_db()
        assert appointment.start == salon.at(14)
        assert appointment.history.filter(action="rescheduled").exists()


def test_todays_appointments_are_one_click_from_the_index(world: World) -> None:
    client = login(world.staff_a)
    index = client.get(reverse("admin:index")).content.decode()
    assert f"{CHANGELIST}?when=today" in index
    assert client.get(CHANGELIST, {"when": "today"}).status_code == 200


def test_the_history_is_shown_on_the_appointment_page(world: World, salon: Salon) -> None:
    client = login(world.owner_a)
    client.post(ADD, _form(salon, 10))
    with tenant_context(salon.company):
        appointment = Appointment.objects.get(customer=salon.customer)
    page = client.get(reverse("admin:bookings_appointment_change", args=[appointment.pk]))
    assert "created" in page.content.decode()
    assert f"user:{world.owner_a.pk}" in page.content.decode()


def test_repeated_failed_logins_lock_the_account_out(world: World) -> None:
    client = Client()
    url = reverse("admin:login")
    for _ in range(5):
        client.post(url, {"username": "owner_a", "password": "wrong"})
    locked = client.post(url, {"username": "owner_a", "password": "pw"})
    assert locked.status_code == 429
    assert Client().post(url, {"username": "staff_a", "password": "pw"}).status_code == 302


def test_the_customer_autocomplete_offers_only_the_companys_customers(world: World) -> None:
    from bookings.models import Customer

    response = login(world.staff_a).get(
        "/admin/autocomplete/",
        {
            "app_label": "bookings",
            "model_name": "appointment",
            "field_name": "customer",
            "term": "Customer",
        },
    )
    assert response.status_code == 200
    ids = {int(r["id"]) for r in response.json()["results"]}
    assert world.rows["a"][Customer].pk in ids
    assert world.rows["b"][Customer].pk not in ids


def test_the_service_autocomplete_in_the_staff_page_is_scoped(world: World) -> None:
    from bookings.models import Service

    response = login(world.owner_a).get(
        "/admin/autocomplete/",
        {"app_label": "bookings", "model_name": "staffservice", "field_name": "service"},
    )
    assert response.status_code == 200
    ids = {int(r["id"]) for r in response.json()["results"]}
    assert ids == {world.rows["a"][Service].pk}
