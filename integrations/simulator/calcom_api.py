"""Cal.com API v2 subset: event types, slots, bookings, busy times, webhooks.

Served under ``/calcom`` and ``/calcom/v2``; ``Authorization: Bearer cal_...`` required.
Answers are ``{"status": "success", "data": ...}``; errors
``{"status": "error", "error": {"code", "message"}}``. Objects belong to the API key that
created them; seeded objects (no owner) are visible to every key.

Simplifications: slots are 30-minute steps 09:00-17:00 UTC on weekdays minus accepted
bookings of the event type and ``state["calcom"]["busy"]``; a booking is refused (409
``CONFLICT``) only when it overlaps an accepted booking of the same event type, or
starts in the past (400). Working hours are not enforced on booking.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .common import (
    ApiError,
    Context,
    SimRequest,
    SimResponse,
    Target,
    clone,
    iso_z,
    parse_dt,
    rand_alnum,
    visible,
)

Handler = Callable[[SimRequest, str, list[str]], tuple[int, Any]]

ALL_TRIGGERS = ["BOOKING_CREATED", "BOOKING_RESCHEDULED", "BOOKING_CANCELLED"]
MAX_SLOT_DAYS = 62


def error_body(exc: ApiError) -> dict[str, Any]:
    return {"status": "error", "error": {"code": exc.code or "ERROR", "message": exc.message}}


def fault_body(status: int) -> dict[str, Any]:
    code = "TOO_MANY_REQUESTS" if status == 429 else "INTERNAL_SERVER_ERROR"
    if status < 500 and status != 429:
        code = "BAD_REQUEST"
    return error_body(ApiError(status, f"Simulated Cal.com failure ({status}).", code))


def _not_found(what: str, ident: Any) -> ApiError:
    return ApiError(404, f"{what} with id={ident} not found", "NOT_FOUND")


def _bad(message: str) -> ApiError:
    return ApiError(400, message, "BAD_REQUEST")


def _body(req: SimRequest) -> dict[str, Any]:
    if req.parse_error:
        raise _bad(f"Invalid JSON body: {req.parse_error}")
    if req.body is None:
        return {}
    if not isinstance(req.body, dict):
        raise _bad("Body must be a JSON object")
    return req.body


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise _bad(f"{name} must be an integer")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _bad(f"{name} must be an integer") from None


def _range_bound(value: str | None, name: str, end: bool) -> datetime | None:
    """A date (whole day; ``end`` means the day's end) or datetime query bound."""
    if not value:
        return None
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        day = datetime.combine(date.fromisoformat(value), time(), tzinfo=UTC)
        return day + timedelta(days=1) if end else day
    return parse_dt(value, name)


class CalcomApi:
    """Handlers of ``/calcom/...``; call ``handle`` with the context lock held."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("GET", re.compile(r"/event-types"), self.list_event_types),
            ("POST", re.compile(r"/event-types"), self.create_event_type),
            ("GET", re.compile(r"/slots(?:/available)?"), self.slots),
            ("GET", re.compile(r"/bookings"), self.list_bookings),
            ("POST", re.compile(r"/bookings"), self.create_booking),
            ("GET", re.compile(r"/bookings/([^/]+)"), self.get_booking),
            ("POST", re.compile(r"/bookings/([^/]+)/cancel"), self.cancel_booking),
            ("POST", re.compile(r"/bookings/([^/]+)/reschedule"), self.reschedule_booking),
            ("GET", re.compile(r"/calendars/busy-times"), self.busy_times),
            ("GET", re.compile(r"/webhooks"), self.list_webhooks),
            ("POST", re.compile(r"/webhooks"), self.create_webhook),
            ("GET", re.compile(r"/webhooks/(\d+)"), self.get_webhook),
            ("PATCH", re.compile(r"/webhooks/(\d+)"), self.update_webhook),
            ("DELETE", re.compile(r"/webhooks/(\d+)"), self.delete_webhook),
        ]

    @property
    def s(self) -> dict[str, Any]:
        calcom_state: dict[str, Any] = self.ctx.state["calcom"]
        return calcom_state

    # -- entry -----------------------------------------------------------------------
    def handle(self, req: SimRequest) -> SimResponse:
        try:
            key = req.bearer()
            if not key or not key.startswith("cal_"):
                raise ApiError(401, "Invalid or missing API key (Bearer cal_...)", "UNAUTHORIZED")
            path = req.path[3:] if req.path.startswith("/v2/") else req.path
            path = path.rstrip("/") or "/"
            known = False
            for method, pattern, handler in self.routes:
                match = pattern.fullmatch(path)
                if match:
                    known = True
                    if method == req.method:
                        status, data = handler(req, key, list(match.groups()))
                        body: dict[str, Any] = {"status": "success", "data": data}
                        if isinstance(data, dict) and "_pagination" in data:
                            body["data"] = data["items"]
                            body["pagination"] = data["_pagination"]
                        return SimResponse(status, body)
            if known:
                raise ApiError(405, f"Cannot {req.method} {req.path}", "METHOD_NOT_ALLOWED")
            raise ApiError(404, f"Cannot {req.method} {req.path}", "NOT_FOUND")
        except ApiError as exc:
            return SimResponse(exc.status, error_body(exc))

    def _next_id(self) -> int:
        self.s["next_id"] += 1
        ident: int = self.s["next_id"]
        return ident

    def _owns(self, kind: str, ident: Any, key: str | None) -> bool:
        return key is None or visible(self.s["owners"], f"{kind}:{ident}", key)

    # -- event types -----------------------------------------------------------------
    def _event_type(self, ident: Any, key: str | None) -> dict[str, Any]:
        event_type_id = _int(ident, "eventTypeId")
        event_type: dict[str, Any] | None = self.s["event_types"].get(event_type_id)
        if event_type is None or not self._owns("event_type", event_type_id, key):
            raise _not_found("Event type", event_type_id)
        return event_type

    def list_event_types(self, req: SimRequest, key: str, _: list[str]) -> tuple[int, Any]:
        return 200, [
            clone(e) for i, e in self.s["event_types"].items() if self._owns("event_type", i, key)
        ]

    def create_event_type(self, req: SimRequest, key: str, _: list[str]) -> tuple[int, Any]:
        body = _body(req)
        for field in ("title", "slug", "lengthInMinutes"):
            if not body.get(field):
                raise _bad(f"{field} is required")
        ident = self._next_id()
        event_type = {
            "id": ident,
            "title": str(body["title"]),
            "slug": str(body["slug"]),
            "lengthInMinutes": _int(body["lengthInMinutes"], "lengthInMinutes"),
            "description": body.get("description", ""),
            "locations": body.get("locations", []),
            "ownerId": self.s["organizer"]["id"],
            "hidden": bool(body.get("hidden", False)),
        }
        self.s["event_types"][ident] = event_type
        self.s["owners"][f"event_type:{ident}"] = key
        return 201, clone(event_type)

    # -- slots and busy times --------------------------------------------------------
    def _busy(self, key: str, event_type_id: int | None = None) -> list[tuple[datetime, datetime]]:
        spans = [(parse_dt(b["start"], "start"), parse_dt(b["end"], "end")) for b in self.s["busy"]]
        for uid, booking in self.s["bookings"].items():
            if booking["status"] != "accepted" or not self._owns("booking", uid, key):
                continue
            if event_type_id is not None and booking["eventTypeId"] != event_type_id:
                continue
            spans.append((parse_dt(booking["start"], "start"), parse_dt(booking["end"], "end")))
        return spans

    def _busy_of_user(self, key: str, user_id: int) -> list[tuple[datetime, datetime]]:
        spans = [
            (parse_dt(b["start"], "start"), parse_dt(b["end"], "end"))
            for b in self.s["busy"]
            if b.get("userId") in (None, user_id)
        ]
        for uid, booking in self.s["bookings"].items():
            hosts = {host.get("id") for host in booking.get("hosts") or []}
            if (
                booking["status"] == "accepted"
                and user_id in hosts
                and self._owns("booking", uid, key)
            ):
                spans.append((parse_dt(booking["start"], "start"), parse_dt(booking["end"], "end")))
        return spans

    def slots(self, req: SimRequest, key: str, _: list[str]) -> tuple[int, Any]:
        event_type = self._event_type(req.q("eventTypeId"), key)
        start = _range_bound(req.q("start") or req.q("startTime"), "start", end=False)
        end = _range_bound(req.q("end") or req.q("endTime"), "end", end=True)
        if start is None or end is None:
            raise _bad("start and end are required")
        end = min(end, start + timedelta(days=MAX_SLOT_DAYS))
        tz_name = req.q("timeZone")
        try:
            tz = ZoneInfo(tz_name) if tz_name else None
        except (ZoneInfoNotFoundError, ValueError):
            raise _bad(f"Invalid timeZone {tz_name}") from None
        length = timedelta(minutes=int(req.q("duration") or event_type["lengthInMinutes"]))
        busy = self._busy(key, event_type["id"])
        now = datetime.now(UTC)
        result: dict[str, list[dict[str, str]]] = {}
        day = start.date()
        while datetime.combine(day, time(), tzinfo=UTC) < end:
            if day.weekday() < 5:
                slot = datetime.combine(day, time(9), tzinfo=UTC)
                close = datetime.combine(day, time(17), tzinfo=UTC)
                while slot + length <= close:
                    slot_end = slot + length
                    free = all(not (b0 < slot_end and slot < b1) for b0, b1 in busy)
                    if start <= slot and slot_end <= end and slot >= now and free:
                        local = slot.astimezone(tz) if tz else slot
                        text = local.isoformat(timespec="milliseconds") if tz else iso_z(slot)
                        result.setdefault(local.date().isoformat(), []).append({"start": text})
                    slot += timedelta(minutes=30)
            day += timedelta(days=1)
        return 200, result

    def busy_times(self, req: SimRequest, key: str, _: list[str]) -> tuple[int, Any]:
        """Busy spans; ``userId`` keeps that user's: busy entries tagged with it (or
        untagged) and bookings it hosts."""
        start = _range_bound(req.q("dateFrom"), "dateFrom", end=False)
        end = _range_bound(req.q("dateTo"), "dateTo", end=True)
        user = req.q("userId")
        spans = sorted(
            self._busy(key) if user is None else self._busy_of_user(key, _int(user, "userId"))
        )
        return 200, [
            {"start": iso_z(b0), "end": iso_z(b1)}
            for b0, b1 in spans
            if (start is None or b1 > start) and (end is None or b0 < end)
        ]

    # -- bookings --------------------------------------------------------------------
    def _booking(self, uid: str, key: str | None) -> dict[str, Any]:
        booking: dict[str, Any] | None = self.s["bookings"].get(uid)
        if booking is None or not self._owns("booking", uid, key):
            raise ApiError(404, f"Booking with uid={uid} not found", "NOT_FOUND")
        return booking

    def _new_booking(
        self,
        key: str | None,
        event_type: dict[str, Any],
        start: datetime,
        attendee: dict[str, Any],
        metadata: dict[str, Any],
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        if start < datetime.now(UTC) - timedelta(minutes=1):
            raise _bad("Attempting to book a meeting in the past.")
        end = start + timedelta(minutes=event_type["lengthInMinutes"])
        for b0, b1 in self._busy_of_type(event_type["id"], key):
            if b0 < end and start < b1:
                raise ApiError(
                    409,
                    "User either already has booking at this time or is not available",
                    "CONFLICT",
                )
        uid = rand_alnum(22)
        now = iso_z(datetime.now(UTC))
        organizer = self.s["organizer"]
        booking = {
            "id": self._next_id(),
            "uid": uid,
            "title": f"{event_type['title']} between {organizer['name']} and {attendee['name']}",
            "description": "",
            "hosts": [clone(organizer)],
            "status": "accepted",
            "cancellationReason": None,
            "reschedulingReason": None,
            "rescheduledFromUid": None,
            "rescheduledToUid": None,
            "start": iso_z(start),
            "end": iso_z(end),
            "duration": event_type["lengthInMinutes"],
            "eventTypeId": event_type["id"],
            "eventType": {"id": event_type["id"], "slug": event_type["slug"]},
            "meetingUrl": None,
            "location": None,
            "absentHost": False,
            "createdAt": now,
            "updatedAt": now,
            "metadata": metadata,
            "rating": None,
            "icsUid": f"{uid}@Cal.com",
            "attendees": [
                {
                    "name": attendee["name"],
                    "email": attendee.get("email"),
                    "timeZone": attendee["timeZone"],
                    "phoneNumber": attendee.get("phoneNumber"),
                    "language": attendee.get("language", "en"),
                    "absent": False,
                }
            ],
            "guests": [],
            "bookingFieldsResponses": {
                "name": attendee["name"],
                "email": attendee.get("email"),
                "attendeePhoneNumber": attendee.get("phoneNumber"),
            },
            **(extra or {}),
        }
        self.s["bookings"][uid] = booking
        if key is not None:
            self.s["owners"][f"booking:{uid}"] = key
        return booking

    def _busy_of_type(self, event_type_id: int, key: str | None) -> list[tuple[datetime, datetime]]:
        return [
            (parse_dt(b["start"], "start"), parse_dt(b["end"], "end"))
            for uid, b in self.s["bookings"].items()
            if b["status"] == "accepted"
            and b["eventTypeId"] == event_type_id
            and self._owns("booking", uid, key)
        ]

    def create_booking(self, req: SimRequest, key: str, _: list[str]) -> tuple[int, Any]:
        body = _body(req)
        if "eventTypeId" not in body:
            raise _bad("eventTypeId is required")
        event_type = self._event_type(body["eventTypeId"], key)
        start = parse_dt(body.get("start"), "start")
        attendee = body.get("attendee")
        if not isinstance(attendee, dict) or not attendee.get("name"):
            raise _bad("attendee.name is required")
        if not attendee.get("timeZone"):
            raise _bad("attendee.timeZone is required")
        if not (attendee.get("email") or attendee.get("phoneNumber")):
            raise _bad("attendee.email or attendee.phoneNumber is required")
        metadata = body.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise _bad("metadata must be an object")
        booking = self._new_booking(key, event_type, start, attendee, clone(metadata))
        self._emit("BOOKING_CREATED", booking, key)
        return 201, clone(booking)

    def get_booking(self, req: SimRequest, key: str, g: list[str]) -> tuple[int, Any]:
        return 200, clone(self._booking(g[0], key))

    def list_bookings(self, req: SimRequest, key: str, _: list[str]) -> tuple[int, Any]:
        after = _range_bound(req.q("afterStart"), "afterStart", end=False)
        before = _range_bound(req.q("beforeEnd"), "beforeEnd", end=True)
        statuses = {s for s in (req.q("status") or "").split(",") if s}
        event_type_id = req.q("eventTypeId")
        email = req.q("attendeeEmail")
        now = datetime.now(UTC)
        items = []
        for uid, b in self.s["bookings"].items():
            if not self._owns("booking", uid, key):
                continue
            start, end = parse_dt(b["start"], "start"), parse_dt(b["end"], "end")
            if (after and start < after) or (before and end > before):
                continue
            if event_type_id and str(b["eventTypeId"]) != event_type_id:
                continue
            if email and not any(a.get("email") == email for a in b["attendees"]):
                continue
            if statuses:
                flags = {
                    "upcoming": b["status"] == "accepted" and end > now,
                    "past": end <= now,
                    "cancelled": b["status"] == "cancelled",
                    "unconfirmed": b["status"] == "pending",
                    "accepted": b["status"] == "accepted",
                }
                if not any(flags.get(s, False) for s in statuses):
                    continue
            items.append(b)
        items.sort(key=lambda b: b["start"])
        take = _int(req.q("take") or 100, "take")
        skip = _int(req.q("skip") or 0, "skip")
        page = items[skip : skip + take]
        pagination = {
            "totalItems": len(items),
            "remainingItems": max(0, len(items) - skip - len(page)),
            "returnedItems": len(page),
            "itemsPerPage": take,
            "currentPage": skip // take + 1 if take else 1,
            "hasNextPage": skip + len(page) < len(items),
            "hasPreviousPage": skip > 0,
        }
        return 200, {"items": clone(page), "_pagination": pagination}

    def cancel(self, uid: str, reason: str | None, key: str | None, notify: bool) -> dict[str, Any]:
        """Cancel a booking; ``notify=False`` makes drift (no webhook)."""
        booking = self._booking(uid, key)
        if booking["status"] == "cancelled":
            raise _bad("This booking has already been cancelled.")
        booking.update(
            status="cancelled", cancellationReason=reason, updatedAt=iso_z(datetime.now(UTC))
        )
        if notify:
            self._emit("BOOKING_CANCELLED", booking, key)
        return booking

    def cancel_booking(self, req: SimRequest, key: str, g: list[str]) -> tuple[int, Any]:
        body = _body(req)
        booking = self.cancel(g[0], body.get("cancellationReason"), key, notify=True)
        return 200, clone(booking)

    def reschedule(
        self, uid: str, start: datetime, reason: str | None, key: str | None, notify: bool
    ) -> dict[str, Any]:
        """Move a booking: a new accepted booking replaces the (cancelled) old one."""
        old = self._booking(uid, key)
        if old["status"] != "accepted":
            raise _bad(f"Booking {uid} is {old['status']} and can't be rescheduled.")
        owner = self.s["owners"].get(f"booking:{uid}")
        old["status"] = "cancelled"  # frees the old slot for the conflict check
        try:
            new = self._new_booking(
                owner,
                self._event_type(old["eventTypeId"], None),
                start,
                old["attendees"][0],
                clone(old["metadata"]),
                {"rescheduledFromUid": uid, "reschedulingReason": reason},
            )
        except ApiError:
            old["status"] = "accepted"
            raise
        old.update(
            rescheduled=True,
            rescheduledToUid=new["uid"],
            reschedulingReason=reason,
            updatedAt=new["createdAt"],
        )
        if notify:
            self._emit("BOOKING_RESCHEDULED", new, owner, previous=old)
        return new

    def reschedule_booking(self, req: SimRequest, key: str, g: list[str]) -> tuple[int, Any]:
        body = _body(req)
        start = parse_dt(body.get("start"), "start")
        new = self.reschedule(g[0], start, body.get("reschedulingReason"), key, notify=True)
        return 201, clone(new)

    # -- webhooks --------------------------------------------------------------------
    @staticmethod
    def _public_webhook(hook: dict[str, Any]) -> dict[str, Any]:
        return {k: clone(v) for k, v in hook.items() if not k.startswith("_")}

    def _webhook(self, ident: str, key: str) -> dict[str, Any]:
        hook: dict[str, Any] | None = self.s["webhooks"].get(int(ident))
        if hook is None or not self._owns("webhook", hook["id"], key):
            raise _not_found("Webhook", ident)
        return hook

    def list_webhooks(self, req: SimRequest, key: str, _: list[str]) -> tuple[int, Any]:
        return 200, [
            self._public_webhook(h)
            for i, h in self.s["webhooks"].items()
            if self._owns("webhook", i, key)
        ]

    def create_webhook(self, req: SimRequest, key: str, _: list[str]) -> tuple[int, Any]:
        body = _body(req)
        if not body.get("subscriberUrl"):
            raise _bad("subscriberUrl is required")
        if "active" not in body:
            raise _bad("active is required")
        ident = self._next_id()
        hook = {
            "id": ident,
            "subscriberUrl": str(body["subscriberUrl"]),
            "triggers": list(body.get("triggers") or ALL_TRIGGERS),
            "active": bool(body["active"]),
            "payloadTemplate": body.get("payloadTemplate"),
            "userId": self.s["organizer"]["id"],
            "_secret": str(body.get("secret") or ""),
        }
        self.s["webhooks"][ident] = hook
        self.s["owners"][f"webhook:{ident}"] = key
        return 201, self._public_webhook(hook)

    def get_webhook(self, req: SimRequest, key: str, g: list[str]) -> tuple[int, Any]:
        return 200, self._public_webhook(self._webhook(g[0], key))

    def update_webhook(self, req: SimRequest, key: str, g: list[str]) -> tuple[int, Any]:
        hook = self._webhook(g[0], key)
        body = _body(req)
        for field in ("subscriberUrl", "triggers", "active", "payloadTemplate"):
            if field in body:
                hook[field] = body[field]
        if "secret" in body:
            hook["_secret"] = str(body["secret"] or "")
        return 200, self._public_webhook(hook)

    def delete_webhook(self, req: SimRequest, key: str, g: list[str]) -> tuple[int, Any]:
        hook = self._webhook(g[0], key)
        del self.s["webhooks"][hook["id"]]
        return 200, self._public_webhook(hook)

    def _emit(
        self,
        trigger: str,
        booking: dict[str, Any],
        key: str | None,
        previous: dict[str, Any] | None = None,
    ) -> None:
        targets = self.ctx.targets("calcom")
        for ident, hook in self.s["webhooks"].items():
            if (
                hook["active"]
                and trigger in hook["triggers"]
                and (key is None or self._owns("webhook", ident, key))
            ):
                targets.append(Target("calcom", hook["subscriberUrl"], hook["_secret"]))
        payload = self.webhook_payload(booking, previous)
        body = {"triggerEvent": trigger, "createdAt": iso_z(datetime.now(UTC)), "payload": payload}
        self.ctx.emit("calcom", trigger, body, targets)

    def webhook_payload(
        self, booking: dict[str, Any], previous: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The ``payload`` of a booking webhook, shaped like fixtures/calcom/*.json."""
        event_type = self.s["event_types"].get(booking["eventTypeId"], {})
        organizer = self.s["organizer"]
        attendee = booking["attendees"][0]
        responses: dict[str, Any] = {
            "name": {"label": "your_name", "value": attendee["name"]},
            "email": {"label": "email_address", "value": attendee.get("email")},
        }
        if attendee.get("phoneNumber"):
            responses["attendeePhoneNumber"] = {"label": "phone", "value": attendee["phoneNumber"]}
        payload: dict[str, Any] = {
            "type": event_type.get("slug"),
            "title": booking["title"],
            "description": "",
            "additionalNotes": "",
            "customInputs": {},
            "startTime": booking["start"][:19] + "Z",
            "endTime": booking["end"][:19] + "Z",
            "organizer": {**clone(organizer), "language": {"locale": "en"}, "timeFormat": "h:mma"},
            "responses": responses,
            "userFieldsResponses": {},
            "attendees": [
                {
                    "email": a.get("email"),
                    "name": a["name"],
                    "timeZone": a["timeZone"],
                    "phoneNumber": a.get("phoneNumber"),
                    "language": {"locale": a.get("language", "en")},
                }
                for a in booking["attendees"]
            ],
            "location": booking["location"],
            "destinationCalendar": None,
            "hideCalendarNotes": False,
            "requiresConfirmation": False,
            "eventTypeId": booking["eventTypeId"],
            "seatsShowAttendees": True,
            "seatsPerTimeSlot": None,
            "uid": booking["uid"],
            "bookingId": booking["id"],
            "eventTitle": event_type.get("title"),
            "price": 0,
            "currency": "usd",
            "length": booking["duration"],
            "metadata": clone(booking["metadata"]),
            "status": booking["status"].upper(),
        }
        if booking["status"] == "cancelled":
            payload["cancellationReason"] = booking.get("cancellationReason")
            payload["cancelledBy"] = organizer["email"]
        if previous is not None:
            payload["rescheduleUid"] = previous["uid"]
            payload["rescheduleId"] = previous["id"]
            payload["rescheduleStartTime"] = previous["start"][:19] + "Z"
            payload["rescheduleEndTime"] = previous["end"][:19] + "Z"
            payload["rescheduledBy"] = organizer["email"]
        return payload
