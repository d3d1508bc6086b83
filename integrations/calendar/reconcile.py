"""Repair drift between Cal.com and our appointments (Cal.com may never retry a webhook).

For one company, the next ``WINDOW_DAYS`` of Cal.com bookings are compared with our
appointments by ``calcom_uid`` and repaired the way the missed webhook would have:
each repair is the Cal.com handler itself (``webhooks.handlers.calcom``) run on a
webhook-shaped payload built from the API's booking, one savepoint each.

- a booking cancelled at Cal.com whose appointment is active → ours is cancelled
  (actor ``calendar``);
- a booking moved at Cal.com (a new uid ``rescheduledFromUid`` one of ours) → ours moves;
- a booking we don't know (made in Cal.com) → ours is created, or linked when the saga
  tagged it with our id;
- our active appointment whose uid Cal.com doesn't know → logged and counted, never
  deleted (a customer's booking is worth a human look).

Idempotent (a second run finds nothing to do) and bounded (``MAX_BOOKINGS`` listed,
``MAX_LOOKUPS`` single-booking requests, one deadline). HTTP never runs inside a
transaction.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from bookings.models import ACTIVE_STATUSES, Appointment, StaffMember
from integrations.calendar import metrics
from integrations.calendar.busy import invalidate_staff
from integrations.clients.calcom import CalcomClient
from integrations.credentials import credentials_for
from integrations.deadline import Deadline
from integrations.errors import IntegrationError
from integrations.models import Integration
from tenants.cache import tenant_key
from tenants.context import all_tenants, tenant_context
from webhooks.handlers import PermanentFailure, handler_for
from webhooks.models import WebhookEndpoint, WebhookEvent

log = structlog.get_logger(__name__)

WINDOW_DAYS = 14
MAX_BOOKINGS = 1000
MAX_LOOKUPS = 50  # get_booking calls per run (following moves, checking unknown uids)
MAX_HOPS = 5  # a booking moved several times: follow at most this many steps
DEADLINE_SECONDS = 60.0
LOCK_SECONDS = 5 * 60
GONE = ("cancelled", "rejected")


class _OverBudget(Exception):
    """A run needed more single-booking lookups than ``MAX_LOOKUPS``."""


@dataclass(slots=True)
class Summary:
    company_id: int
    connected: bool = True
    checked: int = 0  # Cal.com bookings looked at
    created: int = 0
    linked: int = 0  # made by our saga, now linked to its appointment
    moved: int = 0
    cancelled: int = 0
    missing_at_calcom: int = 0  # ours, unknown to Cal.com: reported only
    failed: int = 0  # a repair the handler refused (no staff/service match, clash, ...)
    skipped: bool = False  # another run holds this company's lock
    error: str = ""

    @property
    def changes(self) -> int:
        return self.created + self.linked + self.moved + self.cancelled

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def connected_company_ids() -> list[int]:
    """Companies with a Cal.com key stored (the key is ciphertext: tested in Python)."""
    with all_tenants("reconcile calendar: companies with Cal.com connected"):
        rows = Integration.objects.filter(provider="calcom").values_list("company_id", "api_key")
        return sorted(company_id for company_id, api_key in rows if api_key)


def reconcile_company(company_id: int, *, now: datetime | None = None) -> Summary:
    """Reconcile one company; binds its tenant for the whole run."""
    summary = Summary(company_id=company_id)
    with tenant_context(company_id):
        credentials = credentials_for("calcom")
        if credentials is None:
            summary.connected = False
            return summary
        lock = tenant_key("calendar-reconcile-lock")
        if cache.add(lock, 1, LOCK_SECONDS) is False:  # None: cache down, run anyway
            summary.skipped = True
            return summary
        try:
            run = _Run(CalcomClient(credentials, Deadline.after(DEADLINE_SECONDS)), summary)
            run.reconcile(now or timezone.now())
        except (IntegrationError, _OverBudget) as exc:  # the rest waits for the next run
            summary.error = str(exc)
            log.warning("calendar.reconcile_stopped", company_id=company_id, error=str(exc))
        finally:
            cache.delete(lock)
    for action in ("created", "linked", "moved", "cancelled", "missing_at_calcom", "failed"):
        if count := getattr(summary, action):
            metrics.reconcile_actions.labels(action).inc(count)
    log.info("calendar.reconciled", **summary.as_dict())
    return summary


def webhook_payload(booking: dict[str, Any], reschedule_uid: str = "") -> dict[str, Any]:
    """A Cal.com API v2 booking in the shape of a booking webhook's ``payload``."""
    hosts = booking.get("hosts") or []
    organizer = booking.get("organizer") or (hosts[0] if hosts else {})
    responses = booking.get("bookingFieldsResponses") or {}
    payload: dict[str, Any] = {
        "uid": booking["uid"],
        "startTime": booking.get("start"),
        "endTime": booking.get("end"),
        "organizer": {"id": organizer.get("id")},
        "eventTypeId": booking.get("eventTypeId") or (booking.get("eventType") or {}).get("id"),
        "attendees": [
            {"name": a.get("name"), "email": a.get("email"), "phoneNumber": a.get("phoneNumber")}
            for a in booking.get("attendees") or []
        ],
        "responses": {"attendeePhoneNumber": {"value": responses.get("attendeePhoneNumber")}},
        "metadata": booking.get("metadata") or {},
        "cancellationReason": booking.get("cancellationReason"),
    }
    if reschedule_uid:
        payload["rescheduleUid"] = reschedule_uid
    return payload


class _Run:
    """One reconciliation of the bound company."""

    def __init__(self, client: CalcomClient, summary: Summary) -> None:
        self.client = client
        self.summary = summary
        self.lookups = 0
        self.endpoint_id = (
            WebhookEndpoint.objects.filter(provider="calcom").values_list("pk", flat=True).first()
        )
        self.touched_staff: set[int] = set()

    def reconcile(self, now: datetime) -> None:
        after, before = now, now + timedelta(days=WINDOW_DAYS)
        listed = self.client.bookings(after=after, before=before, status="upcoming,cancelled")
        self.by_uid = {str(b["uid"]): b for b in listed[:MAX_BOOKINGS]}
        self.summary.checked = len(self.by_uid)
        known = set(
            Appointment.objects.filter(calcom_uid__in=list(self.by_uid)).values_list(
                "calcom_uid", flat=True
            )
        )
        # 1. Accepted bookings we don't know: moved from one of ours, or new.
        for uid, booking in self.by_uid.items():
            if booking.get("status") != "accepted" or uid in known:
                continue
            origin = self._our_origin(booking)
            if origin:
                self._apply("BOOKING_RESCHEDULED", webhook_payload(booking, origin), "moved")
            else:
                self._create(booking)
        # 2. Our active appointments in the window whose booking isn't accepted there.
        ours = Appointment.objects.filter(
            status__in=ACTIVE_STATUSES,
            calcom_uid__isnull=False,
            start__gte=after,
            end__lte=before,
        ).values_list("pk", "calcom_uid")
        for pk, uid in list(ours):
            found = self._lookup(uid)
            if found is None:
                self.summary.missing_at_calcom += 1
                log.warning("calendar.unknown_at_calcom", appointment=pk, calcom_uid=uid)
            elif found.get("status") in GONE:
                self._gone(uid, found)
        if self.summary.changes:
            staff = StaffMember.objects.filter(calcom_user_id__isnull=False)
            invalidate_staff(self.summary.company_id, list(staff.values_list("pk", flat=True)))

    def _gone(self, uid: str, booking: dict[str, Any]) -> None:
        """Ours is active, Cal.com's booking isn't: moved on (follow it) or cancelled."""
        final = booking
        for _ in range(MAX_HOPS):
            next_uid = str(final.get("rescheduledToUid") or "")
            step = self._lookup(next_uid) if next_uid else None
            if step is None:
                break
            final = step
        if final is not booking and final.get("status") == "accepted":
            self._apply("BOOKING_RESCHEDULED", webhook_payload(final, uid), "moved")
        else:
            self._apply("BOOKING_CANCELLED", webhook_payload(booking), "cancelled")

    def _our_origin(self, booking: dict[str, Any]) -> str:
        """The uid of our appointment this booking was (perhaps repeatedly) moved from."""
        previous = str(booking.get("rescheduledFromUid") or "")
        for _ in range(MAX_HOPS):
            if not previous:
                return ""
            if Appointment.objects.filter(calcom_uid=previous).exists():
                return previous
            step = self._lookup(previous)
            previous = str((step or {}).get("rescheduledFromUid") or "")
        return ""

    def _create(self, booking: dict[str, Any]) -> None:
        uid = str(booking["uid"])
        tagged = (booking.get("metadata") or {}).get("askpro_appointment_id")
        if not self._apply("BOOKING_CREATED", webhook_payload(booking), None):
            return
        if not Appointment.objects.filter(calcom_uid=uid).exists():
            log.info("calendar.not_created", uid=uid, tagged=bool(tagged))
        elif tagged:
            self.summary.linked += 1
        else:
            self.summary.created += 1

    def _lookup(self, uid: str) -> dict[str, Any] | None:
        """One booking by uid (bounded per run); None when Cal.com doesn't know it."""
        if uid in self.by_uid:
            return self.by_uid[uid]
        if self.lookups >= MAX_LOOKUPS:
            raise _OverBudget(f"more than {MAX_LOOKUPS} single-booking lookups")
        self.lookups += 1
        try:
            booking = self.client.get_booking(uid)
        except IntegrationError as exc:
            if exc.status == 404:
                return None
            raise
        self.by_uid[uid] = booking
        return booking

    def _apply(self, trigger: str, payload: dict[str, Any], counter: str | None) -> bool:
        """Run the Cal.com webhook handler for ``trigger`` on ``payload`` in a savepoint."""
        handler = handler_for("calcom", trigger)
        assert handler is not None
        event = WebhookEvent(
            company_id=self.summary.company_id,
            provider="calcom",
            event_type=trigger,
            payload={"triggerEvent": trigger, "payload": payload},
        )
        if self.endpoint_id is not None:  # lets the handlers consult the inbox too
            event.endpoint_id = self.endpoint_id
        try:
            with transaction.atomic():
                handler(event)
        except PermanentFailure as exc:
            self.summary.failed += 1
            log.warning(
                "calendar.repair_refused", trigger=trigger, uid=payload["uid"], error=str(exc)
            )
            return False
        if counter:
            setattr(self.summary, counter, getattr(self.summary, counter) + 1)
        log.info("calendar.repaired", trigger=trigger, uid=payload["uid"])
        return True
