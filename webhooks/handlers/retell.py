"""Retell call webhooks → one ``CallLog`` per call, right whatever the arrival order."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bookings.models import Appointment, Customer
from tenants.models import Branch, Company
from tenants.phones import InvalidPhone, normalize_phone
from webhooks.handlers import handles
from webhooks.models import CallLog, CallStage, WebhookEvent

STAGES = {
    "call_started": CallStage.STARTED,
    "call_ended": CallStage.ENDED,
    "call_analyzed": CallStage.ANALYZED,
}


def _instant(ms: Any) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, tz=UTC) if isinstance(ms, int | float) else None


def _phone(raw: Any, region: str) -> str:
    try:
        return normalize_phone(str(raw or ""), region)
    except InvalidPhone:
        return ""  # withheld caller ID


def _fields(call: dict[str, Any], region: str) -> dict[str, Any]:
    """What this webhook says about the call; empty values say nothing."""
    analysis: dict[str, Any] = (
        call["call_analysis"] if isinstance(call.get("call_analysis"), dict) else {}
    )
    found = {
        "direction": str(call.get("direction") or "")[:10],
        "from_number": _phone(call.get("from_number"), region),
        "to_number": _phone(call.get("to_number"), region),
        "started_at": _instant(call.get("start_timestamp")),
        "ended_at": _instant(call.get("end_timestamp")),
        "duration_ms": call.get("duration_ms")
        if isinstance(call.get("duration_ms"), int)
        else None,
        "disconnection_reason": str(call.get("disconnection_reason") or "")[:100],
        "transcript": str(call.get("transcript") or ""),
        "recording_url": str(call.get("recording_url") or "")[:500],
        "summary": str(analysis.get("call_summary") or ""),
        "sentiment": str(analysis.get("user_sentiment") or "")[:20],
        "successful": analysis.get("call_successful")
        if isinstance(analysis.get("call_successful"), bool)
        else None,
    }
    return {key: value for key, value in found.items() if value not in ("", None)}


@handles("retell", *STAGES)
def record_call(event: WebhookEvent) -> None:
    call = event.payload.get("call") or {}
    region = Company.objects.values_list("country", flat=True).get(pk=event.company_id)
    log, _ = CallLog.objects.select_for_update().get_or_create(call_id=call["call_id"])
    for key, value in _fields(call, region).items():
        # A later stage may repeat earlier fields; an earlier one never blanks later ones.
        if getattr(log, key) in ("", None) or STAGES[event.event_type] >= log.stage:
            setattr(log, key, value)
    log.stage = max(log.stage, STAGES[event.event_type])
    if log.branch_id is None and call.get("agent_id"):
        log.branch = Branch.objects.filter(retell_agent_id=call["agent_id"]).first()
    if log.customer_id is None and log.from_number:
        log.customer = Customer.objects.filter(phone=log.from_number).first()
    if log.appointment_id is None:
        # The booking tool keys appointments "retell:<call_id>:…" (idempotency).
        log.appointment = (
            Appointment.objects.filter(idempotency_key__startswith=f"retell:{log.call_id}:")
            .order_by("created_at")
            .first()
        )
    log.save()
