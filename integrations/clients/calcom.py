"""Cal.com API v2: event types, slots and busy times, bookings, webhooks.

Every call sends the `cal-api-version` its endpoint family expects and goes through the
seam (breaker, timeouts, retries within the caller's deadline). Cal.com has no
idempotency keys: `create_booking` tags the booking with our appointment id in
`metadata` and, when a retried create meets a conflict, finds the booking it made.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings

from integrations.credentials import Credentials
from integrations.deadline import Deadline
from integrations.errors import IntegrationError
from integrations.http import seam

BOOKINGS_VERSION = "2024-08-13"
SLOTS_VERSION = "2024-09-04"
EVENT_TYPES_VERSION = "2024-06-14"
WEBHOOK_TRIGGERS = ["BOOKING_CREATED", "BOOKING_RESCHEDULED", "BOOKING_CANCELLED"]


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass(frozen=True, slots=True)
class Attendee:
    name: str
    time_zone: str
    email: str = ""
    phone: str = ""

    def as_json(self) -> dict[str, str]:
        body = {"name": self.name, "timeZone": self.time_zone}
        if self.email:
            body["email"] = self.email
        if self.phone:
            body["phoneNumber"] = self.phone
        return body


class CalcomClient:
    def __init__(self, credentials: Credentials, deadline: Deadline) -> None:
        self.credentials = credentials
        self.deadline = deadline
        self.base = str(settings.CALCOM_API_BASE).rstrip("/")

    def _call(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        version: str | None = None,
        json: Any = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        headers = {"Authorization": f"Bearer {self.credentials.api_key}"}
        if version:
            headers["cal-api-version"] = version
        response = seam().request(
            "calcom",
            operation,
            method,
            self.base + path,
            headers=headers,
            json=json,
            params=params,
            deadline=self.deadline,
        )
        if response.status_code == 204 or not response.content:
            return None
        return response.json().get("data")

    # -- event types -----------------------------------------------------------------
    def event_types(self) -> list[dict[str, Any]]:
        data = self._call("list_event_types", "GET", "/event-types", version=EVENT_TYPES_VERSION)
        return list(data or [])

    # -- calendar --------------------------------------------------------------------
    def busy_times(
        self, start: datetime, end: datetime, *, user_id: int | None = None
    ) -> list[tuple[datetime, datetime]]:
        params: dict[str, Any] = {"dateFrom": _iso(start), "dateTo": _iso(end)}
        if user_id is not None:
            params["userId"] = user_id
        data = self._call("busy_times", "GET", "/calendars/busy-times", params=params)
        return [(_parse(b["start"]), _parse(b["end"])) for b in data or []]

    # -- bookings --------------------------------------------------------------------
    def create_booking(
        self,
        *,
        event_type_id: int,
        start: datetime,
        attendee: Attendee,
        metadata: dict[str, str],
    ) -> dict[str, Any]:
        """Create a booking; a conflict with the booking this very metadata made is a success."""
        body = {
            "eventTypeId": event_type_id,
            "start": _iso(start),
            "attendee": attendee.as_json(),
            "metadata": metadata,
        }
        try:
            return dict(
                self._call(
                    "create_booking", "POST", "/bookings", version=BOOKINGS_VERSION, json=body
                )
            )
        except IntegrationError as exc:
            if exc.status != 409:
                raise
            mine = self.find_booking(start=start, metadata=metadata)
            if mine is None:
                raise
            return mine

    def find_booking(self, *, start: datetime, metadata: dict[str, str]) -> dict[str, Any] | None:
        """The accepted booking at `start` carrying `metadata` (ours), if Cal.com has one."""
        for booking in self.bookings(after=start, before=None, status="upcoming"):
            same_start = _parse(str(booking.get("start"))) == start
            carries = all(
                str((booking.get("metadata") or {}).get(k)) == v for k, v in metadata.items()
            )
            if same_start and carries:
                return booking
        return None

    def bookings(
        self, *, after: datetime | None, before: datetime | None, status: str = "upcoming"
    ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"status": status, "take": 100, "skip": 0}
        if after:
            params["afterStart"] = _iso(after)
        if before:
            params["beforeEnd"] = _iso(before)
        found: list[dict[str, Any]] = []
        while True:
            data = self._call(
                "list_bookings", "GET", "/bookings", version=BOOKINGS_VERSION, params=params
            )
            items = data.get("items", []) if isinstance(data, dict) else list(data or [])
            found.extend(items)
            if len(items) < params["take"]:
                return found
            params["skip"] += params["take"]

    def get_booking(self, uid: str) -> dict[str, Any]:
        return dict(self._call("get_booking", "GET", f"/bookings/{uid}", version=BOOKINGS_VERSION))

    def cancel_booking(self, uid: str, reason: str = "") -> None:
        """Cancel; a booking Cal.com already cancelled counts as done."""
        try:
            self._call(
                "cancel_booking",
                "POST",
                f"/bookings/{uid}/cancel",
                version=BOOKINGS_VERSION,
                json={"cancellationReason": reason or "Cancelled in AskPro"},
            )
        except IntegrationError as exc:
            if exc.status != 400 or self.get_booking(uid).get("status") != "cancelled":
                raise

    def reschedule_booking(self, uid: str, start: datetime, reason: str = "") -> dict[str, Any]:
        return dict(
            self._call(
                "reschedule_booking",
                "POST",
                f"/bookings/{uid}/reschedule",
                version=BOOKINGS_VERSION,
                json={"start": _iso(start), "reschedulingReason": reason or "Moved in AskPro"},
            )
        )

    # -- webhooks --------------------------------------------------------------------
    def webhooks(self) -> list[dict[str, Any]]:
        return list(self._call("list_webhooks", "GET", "/webhooks") or [])

    def upsert_webhook(self, *, url: str, secret: str, webhook_id: int | None) -> dict[str, Any]:
        """Create our subscriber, or update the one we made (found by id or by URL)."""
        body = {
            "subscriberUrl": url,
            "triggers": WEBHOOK_TRIGGERS,
            "secret": secret,
            "active": True,
        }
        existing = next(
            (
                w
                for w in self.webhooks()
                if w.get("id") == webhook_id or w.get("subscriberUrl") == url
            ),
            None,
        )
        if existing is None:
            return dict(self._call("create_webhook", "POST", "/webhooks", json=body))
        return dict(self._call("update_webhook", "PATCH", f"/webhooks/{existing['id']}", json=body))
