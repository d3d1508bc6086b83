"""Everything the bound company holds about one customer, as JSON-ready data (the right of
access): the customer, their appointments with history, payments and messages, their
calls with transcripts, and the provider events about them."""

from __future__ import annotations

from typing import Any

from django.db.models import Q
from django.utils import timezone

from bookings.models import Appointment, Customer
from bookings.privacy import events
from bookings.privacy.needles import Needles
from integrations.models import OutboxJob
from webhooks.models import CallLog, WebhookEvent

CUSTOMER_FIELDS = ("id", "name", "phone", "email", "notes", "created_at", "forgotten_at")
APPOINTMENT_FIELDS = (
    "id",
    "start",
    "end",
    "status",
    "source",
    "deposit_status",
    "notes",
    "cancellation_reason",
    "cancelled_at",
    "created_at",
)
CALL_FIELDS = (
    "call_id",
    "direction",
    "from_number",
    "to_number",
    "started_at",
    "ended_at",
    "duration_ms",
    "disconnection_reason",
    "transcript",
    "recording_url",
    "summary",
    "sentiment",
    "successful",
    "appointment_id",
)


class NothingToExport(LookupError):
    """Neither a customer nor a call of the bound company has this number."""


def _pick(obj: Any, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in names}


def export_phone(e164: str) -> dict[str, Any]:
    """The export for whoever has the number ``e164`` in the bound company."""
    customer = Customer.objects.filter(phone=e164).first()
    calls = CallLog.objects.filter(Q(from_number=e164) | Q(to_number=e164))
    if customer is None and not calls.exists():
        raise NothingToExport("No customer or call of this company has this number.")
    return export(customer, Needles(phone=e164, email=customer.email if customer else ""))


def export(customer: Customer | None, needles: Needles) -> dict[str, Any]:
    appointments = (
        list(
            Appointment.objects.filter(customer=customer)
            .select_related("branch", "service", "staff")
            .prefetch_related("history", "payments")
            .order_by("start", "pk")
        )
        if customer
        else []
    )
    call_q = Q(customer=customer) if customer else Q(pk__in=[])
    if needles.phone:
        call_q |= Q(from_number=needles.phone) | Q(to_number=needles.phone)
    calls = list(CallLog.objects.filter(call_q).order_by("started_at", "pk"))
    links = events.Links(
        call_ids=[c.call_id for c in calls],
        calcom_uids=[a.calcom_uid for a in appointments if a.calcom_uid],
        appointment_ids=[a.pk for a in appointments],
    )
    return {
        "exported_at": timezone.now(),
        "customer": _pick(customer, CUSTOMER_FIELDS) if customer else None,
        "appointments": [_appointment(a) for a in appointments],
        "calls": [_pick(call, CALL_FIELDS) for call in calls],
        "provider_events": _events(needles, links),
    }


def _appointment(appointment: Appointment) -> dict[str, Any]:
    data = _pick(appointment, APPOINTMENT_FIELDS)
    data.update(
        branch=appointment.branch.name,
        service=appointment.service.name,
        staff=appointment.staff.name,
        history=[
            {"at": h.at, "action": h.action, "by": h.actor, "changes": h.changes}
            for h in appointment.history.all()
        ],
        payments=[
            {
                "amount": p.amount,
                "amount_refunded": p.amount_refunded,
                "currency": p.currency,
                "status": p.status,
                "created_at": p.created_at,
            }
            for p in appointment.payments.all()
        ],
        messages=_messages(appointment),
    )
    return data


def _messages(appointment: Appointment) -> list[dict[str, Any]]:
    """Confirmations and reminders queued for the appointment, and the channels used."""
    jobs = OutboxJob.objects.filter(
        kind__startswith="notify.", payload__appointment_id=appointment.pk
    ).order_by("created_at", "pk")
    return [
        {
            "kind": job.kind.removeprefix("notify."),
            "status": job.status,
            "queued_at": job.created_at,
            "done_at": job.done_at,
            "sent_by": job.payload.get("sent", []),
        }
        for job in jobs
    ]


def _events(needles: Needles, links: events.Links) -> list[dict[str, Any]]:
    """The customer's own provider events (not others that merely mention the number)."""
    found: list[WebhookEvent] = [
        e for e in events.candidates(needles, links) if events.is_theirs(e, needles, links)
    ]
    return [
        {
            "provider": e.provider,
            "type": e.event_type,
            "received_at": e.received_at,
            "payload": e.payload,
        }
        for e in found
    ]
