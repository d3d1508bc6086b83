"""Provider events in the inbox that concern one customer, and their erased form.

An event is the customer's when it is about their call, their appointment or their
calendar booking, or when its caller / attendee / payer field is their number or
address. Their events keep only what the handlers and the de-duplication need (ids,
times, amounts, metadata) and lose the rest: transcripts, names, addresses. Other events
that merely mention the number (someone read it out in another call) only lose that
mention. The ``dedup_key`` is never touched, so a re-delivery is still a duplicate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import reduce
from operator import or_
from typing import Any

from django.db.models import Q, QuerySet, TextField
from django.db.models.functions import Cast

from bookings.privacy.needles import Needles
from webhooks.models import WebhookEvent

RETELL_CALL_KEPT = frozenset(
    {
        "call_id",
        "agent_id",
        "agent_version",
        "call_type",
        "direction",
        "call_status",
        "start_timestamp",
        "end_timestamp",
        "duration_ms",
        "disconnection_reason",
        "from_number",  # scrubbed below when it is the customer's
        "to_number",
    }
)
CALCOM_BOOKING_KEPT = frozenset(
    {
        "uid",
        "rescheduleUid",
        "bookingId",
        "eventTypeId",
        "startTime",
        "endTime",
        "status",
        "type",
        "length",
        "organizer",  # the business's calendar user, not the customer
        "metadata",
        "eventTitle",
        "price",
        "currency",
    }
)
STRIPE_OBJECT_KEPT = frozenset(
    {
        "id",
        "object",
        "amount",
        "amount_total",
        "amount_received",
        "amount_refunded",
        "currency",
        "status",
        "payment_status",
        "payment_intent",
        "metadata",
        "created",
        "livemode",
        "refunded",
        "mode",
    }
)
STRIPE_ERROR_KEPT = frozenset({"code", "decline_code", "type", "message"})
TOP_KEPT = {
    "retell": frozenset({"event"}),
    "calcom": frozenset({"triggerEvent", "createdAt"}),
    "stripe": frozenset({"id", "object", "type", "created", "livemode", "api_version"}),
}


@dataclass(frozen=True)
class Links:
    """The customer's rows that provider events point at."""

    call_ids: list[str] = field(default_factory=list)
    calcom_uids: list[str] = field(default_factory=list)
    appointment_ids: list[int] = field(default_factory=list)

    def q(self) -> Q | None:
        found = []
        if self.call_ids:
            found.append(Q(provider="retell", payload__call__call_id__in=self.call_ids))
        if self.calcom_uids:
            found.append(Q(provider="calcom", payload__payload__uid__in=self.calcom_uids))
            found.append(Q(provider="calcom", payload__payload__rescheduleUid__in=self.calcom_uids))
        if self.appointment_ids:
            ids = [str(pk) for pk in self.appointment_ids]
            found.append(
                Q(provider="stripe", payload__data__object__metadata__appointment_id__in=ids)
            )
            found.append(
                Q(provider="calcom", payload__payload__metadata__askpro_appointment_id__in=ids)
            )
        return reduce(or_, found) if found else None


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def candidates(needles: Needles, links: Links) -> QuerySet[WebhookEvent]:
    """Events linked to the customer's rows or mentioning their number or address."""
    found = [q for q in (links.q(), needles.q_for("payload_text")) if q is not None]
    if not found:
        return WebhookEvent.objects.none()
    return (
        WebhookEvent.objects.annotate(payload_text=Cast("payload", TextField()))
        .filter(reduce(or_, found))
        .order_by("received_at", "pk")
    )


def _linked(event: WebhookEvent, links: Links) -> bool:
    payload = _object(event.payload)
    if event.provider == "retell":
        return _object(payload.get("call")).get("call_id") in links.call_ids
    if event.provider == "calcom":
        booking = _object(payload.get("payload"))
        uids = {booking.get("uid"), booking.get("rescheduleUid")}
        ours = str(_object(booking.get("metadata")).get("askpro_appointment_id") or "")
        return bool(uids & set(links.calcom_uids)) or ours in map(str, links.appointment_ids)
    if event.provider == "stripe":
        obj = _object(_object(payload.get("data")).get("object"))
        ours = str(_object(obj.get("metadata")).get("appointment_id") or "")
        return ours in map(str, links.appointment_ids)
    return False


def _names_them(event: WebhookEvent, needles: Needles) -> bool:
    """The caller, attendee or payer field is the customer's number or address."""
    payload = _object(event.payload)
    if event.provider == "retell":
        call = _object(payload.get("call"))
        return needles.is_phone(call.get("from_number")) or needles.is_phone(call.get("to_number"))
    if event.provider == "calcom":
        booking = _object(payload.get("payload"))
        responses = _object(booking.get("responses"))
        people = [_object(a) for a in booking.get("attendees") or []]
        phones = [a.get("phoneNumber") for a in people]
        phones.append(_object(responses.get("attendeePhoneNumber")).get("value"))
        emails = [a.get("email") for a in people]
        emails.append(_object(responses.get("email")).get("value"))
        return any(map(needles.is_phone, phones)) or any(map(needles.is_email, emails))
    if event.provider == "stripe":
        obj = _object(_object(payload.get("data")).get("object"))
        details = _object(obj.get("customer_details"))
        billing = _object(obj.get("billing_details"))
        emails = [details.get("email"), billing.get("email")]
        emails += [obj.get("receipt_email"), obj.get("customer_email")]
        phones = [details.get("phone"), billing.get("phone")]
        return any(map(needles.is_email, emails)) or any(map(needles.is_phone, phones))
    return False


def is_theirs(event: WebhookEvent, needles: Needles, links: Links) -> bool:
    return _linked(event, links) or _names_them(event, needles)


def _kept(value: Any, keys: frozenset[str]) -> dict[str, Any]:
    return {key: item for key, item in _object(value).items() if key in keys}


def slim(provider: str, payload: Any) -> dict[str, Any]:
    """What an event of the customer keeps: ids, times, amounts, metadata."""
    payload = _object(payload)
    kept = _kept(payload, TOP_KEPT.get(provider, frozenset()))
    if provider == "retell" and "call" in payload:
        kept["call"] = _kept(payload["call"], RETELL_CALL_KEPT)
    elif provider == "calcom" and "payload" in payload:
        kept["payload"] = _kept(payload["payload"], CALCOM_BOOKING_KEPT)
    elif provider == "stripe" and "data" in payload:
        obj = _object(_object(payload["data"]).get("object"))
        slim_obj = _kept(obj, STRIPE_OBJECT_KEPT)
        if "last_payment_error" in obj:
            slim_obj["last_payment_error"] = _kept(obj["last_payment_error"], STRIPE_ERROR_KEPT)
        kept["data"] = {"object": slim_obj}
    return kept
