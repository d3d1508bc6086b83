"""Steady traffic in threads, recording every answer.

Webhooks: signed Stripe ``payment_intent.succeeded`` events (unique ``evt_`` ids, each
paying a deposit of one of our appointments, so each has one countable effect: a
``Payment`` row for its ``pi_`` id), ``webhook_rate`` a second from eight threads; about
10 % are exact re-deliveries of an event already acknowledged (same body, fresh
signature, as Stripe re-sends), and an event that got no 2xx (a 5xx, no answer) is
delivered again 3 s later until it does — as a provider retries.

Bookings: rounds of three clients racing for one staff member's two-hour window (two
want the 30-minute service at its start, one the 90-minute one with deposit), each
with its own ``Idempotency-Key`` and a new customer; exactly one should win. One winner
in ten sends its request again with the same key (the answer must be the same
appointment, replayed). A request without a 2xx/4xx answer is retried with the same key
after 3 s. ``booking_rate`` requests a second over two lanes.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import time as wall_time
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from integrations.simulator.signing import sign_stripe

WEBHOOK_THREADS = 8
BOOKING_LANES = 2
DUPLICATE_SHARE = 0.10
REPLAY_SHARE = 0.10
RETRY_AFTER_S = 3.0
MAX_BOOKING_RETRIES = 20
TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Sample:
    t: float  # wall clock when sent
    kind: str  # webhook | webhook-dup | webhook-retry | booking | booking-replay | booking-retry
    status: int  # HTTP status; 0 = no answer (refused, reset, timed out)
    ms: float
    detail: str = ""  # error code, or the exception's name when there was no answer


@dataclass
class Delivery:
    event_id: str
    intent_id: str
    appointment_id: int
    body: bytes


@dataclass
class BookingRequest:
    key: str
    body: dict[str, Any]
    tries: int = 0
    answers: list[tuple[int, str, int | None]] = field(default_factory=list)  # status, code, id


class Ledger:
    """Everything the traffic saw; thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.samples: list[Sample] = []
        self.deliveries: dict[str, Delivery] = {}
        self.accepted: dict[str, list[float]] = {}  # event id -> times answered 202
        self.duplicate_acked: set[str] = set()  # answered 200 "duplicate"
        self.unanswered: dict[str, int] = {}  # event id -> deliveries without a 2xx
        self.bookings: dict[str, BookingRequest] = {}
        self.winners: list[int] = []
        self.replay_mismatches: list[str] = []

    def add(self, sample: Sample) -> None:
        with self.lock:
            self.samples.append(sample)

    def snapshot(self) -> list[Sample]:
        with self.lock:
            return list(self.samples)

    def acknowledged(self) -> set[str]:
        with self.lock:
            return set(self.accepted) | self.duplicate_acked


class Slots:
    """(staff, start) windows: two hours each, day by day from the day after tomorrow,
    days with a DST change left out (their local hours don't all exist once)."""

    def __init__(self, staff: list[dict[str, Any]], timezone: str) -> None:
        self.staff = staff
        self.tz = ZoneInfo(timezone)
        self._iter = self._windows()
        self._lock = threading.Lock()

    def _windows(self) -> Iterator[tuple[dict[str, Any], datetime]]:
        today = datetime.now(self.tz).date()
        for offset in range(2, 290):  # the payment targets sit on days 300+
            day = today + timedelta(days=offset)
            first = datetime.combine(day, wall_time(0, 0), self.tz)
            last = datetime.combine(day, wall_time(23, 59), self.tz)
            if first.utcoffset() != last.utcoffset():
                continue
            for hour in range(0, 24, 2):
                for member in self.staff:
                    yield member, datetime.combine(day, wall_time(hour, 0), self.tz)

    def next(self) -> tuple[dict[str, Any], datetime]:
        with self._lock:
            return next(self._iter)


class Traffic:
    def __init__(
        self,
        *,
        base_url: str,
        token: str,
        webhook_path: str,
        webhook_secret: str,
        company_id: int,
        staff: list[dict[str, Any]],
        targets: list[int],
        timezone: str,
        webhook_rate: float,
        booking_rate: float,
    ) -> None:
        self.base_url = base_url
        self.token = token
        self.webhook_url = base_url + webhook_path
        self.secret = webhook_secret
        self.company_id = company_id
        self.targets = targets
        self.webhook_rate = webhook_rate
        self.booking_rate = booking_rate
        self.slots = Slots(staff, timezone)
        self.ledger = Ledger()
        self.run_tag = uuid.uuid4().hex[:6]
        self._counter = 0
        self._counter_lock = threading.Lock()
        self._webhook_retries: deque[tuple[float, str]] = deque()
        self._booking_retries: deque[tuple[float, BookingRequest]] = deque()
        self._retry_lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._rng = random.Random(7)  # noqa: S311 -- load shaping, not security

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        for n in range(WEBHOOK_THREADS):
            self._threads.append(threading.Thread(target=self._webhooks, name=f"webhook-{n}"))
        for n in range(BOOKING_LANES):
            self._threads.append(threading.Thread(target=self._bookings, name=f"booking-{n}"))
        for thread in self._threads:
            thread.daemon = True
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=TIMEOUT_S + 5)

    def _next_number(self) -> int:
        with self._counter_lock:
            self._counter += 1
            return self._counter

    @staticmethod
    def _pace(next_at: float, interval: float) -> float:
        now = time.monotonic()
        if next_at > now:
            time.sleep(next_at - now)
        # No catching up after a slow answer: a stalled server doesn't get a burst.
        return max(next_at + interval, time.monotonic())

    # --- webhooks ------------------------------------------------------------------------

    def _new_delivery(self) -> Delivery:
        n = self._next_number()
        event_id = f"evt_chaos{self.run_tag}{n:08d}"
        intent_id = f"pi_chaos{self.run_tag}{n:08d}"
        with self.ledger.lock:
            winners = self.ledger.winners[-200:]
        pool = winners if winners and self._rng.random() < 0.5 else self.targets
        appointment = self._rng.choice(pool)
        payload = {
            "id": event_id,
            "object": "event",
            "api_version": "2025-10-29.clover",
            "created": int(time.time()),
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": "payment_intent.succeeded",
            "data": {
                "object": {
                    "id": intent_id,
                    "object": "payment_intent",
                    "amount": 2000,
                    "amount_received": 2000,
                    "currency": "eur",
                    "status": "succeeded",
                    "metadata": {
                        "company_id": str(self.company_id),
                        "appointment_id": str(appointment),
                    },
                }
            },
        }
        delivery = Delivery(event_id, intent_id, appointment, json.dumps(payload).encode())
        with self.ledger.lock:
            self.ledger.deliveries[event_id] = delivery
        return delivery

    def _pick_webhook(self) -> tuple[str, Delivery]:
        now = time.monotonic()
        with self._retry_lock:
            if self._webhook_retries and self._webhook_retries[0][0] <= now:
                _, event_id = self._webhook_retries.popleft()
                with self.ledger.lock:
                    return "webhook-retry", self.ledger.deliveries[event_id]
        if self._rng.random() < DUPLICATE_SHARE:
            with self.ledger.lock:
                done = list(self.ledger.accepted)[-500:]
                if done:
                    return "webhook-dup", self.ledger.deliveries[self._rng.choice(done)]
        return "webhook", self._new_delivery()

    def _webhooks(self) -> None:
        interval = WEBHOOK_THREADS / self.webhook_rate
        next_at = time.monotonic()
        with httpx.Client(timeout=TIMEOUT_S) as client:
            while not self._stop.is_set():
                next_at = self._pace(next_at, interval)
                kind, delivery = self._pick_webhook()
                self._deliver(client, kind, delivery)

    def _deliver(self, client: httpx.Client, kind: str, delivery: Delivery) -> None:
        headers = {
            "Content-Type": "application/json",
            "Stripe-Signature": sign_stripe(delivery.body, self.secret),
        }
        sent = time.time()
        status, detail = 0, ""
        try:
            response = client.post(self.webhook_url, content=delivery.body, headers=headers)
            status = response.status_code
            if status >= 300:
                detail = _error_code(response)
        except httpx.HTTPError as exc:
            detail = type(exc).__name__
        elapsed = (time.time() - sent) * 1000
        self.ledger.add(Sample(sent, kind, status, elapsed, detail))
        with self.ledger.lock:
            if status == 202:
                self.ledger.accepted.setdefault(delivery.event_id, []).append(sent)
            elif status == 200:
                self.ledger.duplicate_acked.add(delivery.event_id)
            else:
                count = self.ledger.unanswered.get(delivery.event_id, 0) + 1
                self.ledger.unanswered[delivery.event_id] = count
        if status == 0 or status >= 500 or status == 429:
            with self._retry_lock:
                self._webhook_retries.append((time.monotonic() + RETRY_AFTER_S, delivery.event_id))

    # --- bookings ------------------------------------------------------------------------

    def _new_booking(self, service: int, staff: int, start: datetime) -> BookingRequest:
        n = self._next_number()
        key = f"chaos-{self.run_tag}-{n:08d}"
        body = {
            "service": service,
            "staff": staff,
            "start": start.isoformat(),
            "customer": {"name": f"Chaos Caller {n}", "phone": f"+49152{n:08d}"},
            "notes": f"chaos:{key}",
        }
        request = BookingRequest(key, body)
        with self.ledger.lock:
            self.ledger.bookings[key] = request
        return request

    def _book(self, client: httpx.Client, kind: str, request: BookingRequest) -> tuple[int, Any]:
        headers = {"Authorization": f"Token {self.token}", "Idempotency-Key": request.key}
        sent = time.time()
        status, detail, data = 0, "", None
        try:
            response = client.post(
                f"{self.base_url}/api/v1/appointments/", json=request.body, headers=headers
            )
            status = response.status_code
            try:
                data = response.json()
            except ValueError:
                data = None
            if status >= 300:
                detail = _error_code(response)
            elif kind == "booking-replay" and response.headers.get("Idempotent-Replayed") != "true":
                detail = "not-replayed"
            elif isinstance(data, dict):
                detail = str(data.get("status", ""))  # 201: confirmed, or pending
        except httpx.HTTPError as exc:
            detail = type(exc).__name__
        self.ledger.add(Sample(sent, kind, status, (time.time() - sent) * 1000, detail))
        appointment = data.get("id") if isinstance(data, dict) and status == 201 else None
        request.tries += 1
        request.answers.append((status, detail, appointment))
        if status == 201 and kind != "booking-replay" and appointment is not None:
            with self.ledger.lock:
                self.ledger.winners.append(int(appointment))
        unanswered = status == 0 or status >= 500
        if (unanswered or detail == "request_in_progress") and request.tries < MAX_BOOKING_RETRIES:
            with self._retry_lock:
                self._booking_retries.append((time.monotonic() + RETRY_AFTER_S, request))
        return status, data

    def _due_booking_retry(self) -> BookingRequest | None:
        with self._retry_lock:
            if self._booking_retries and self._booking_retries[0][0] <= time.monotonic():
                return self._booking_retries.popleft()[1]
        return None

    def _bookings(self) -> None:
        interval = 3 * BOOKING_LANES / self.booking_rate
        next_at = time.monotonic()
        with (
            httpx.Client(timeout=TIMEOUT_S) as client,
            ThreadPoolExecutor(3, thread_name_prefix="racer") as racers,
        ):
            while not self._stop.is_set():
                next_at = self._pace(next_at, interval)
                retry = self._due_booking_retry()
                if retry is not None:
                    self._book(client, "booking-retry", retry)
                    continue
                member, start = self.slots.next()
                round_ = [
                    self._new_booking(member["cut"], member["id"], start),
                    self._new_booking(member["cut"], member["id"], start),
                    self._new_booking(member["colour"], member["id"], start),
                ]
                answers = list(racers.map(lambda r: self._book(client, "booking", r), round_))
                for request, (status, data) in zip(round_, answers, strict=True):
                    if status == 201 and self._rng.random() < REPLAY_SHARE:
                        replay_status, replay = self._book(client, "booking-replay", request)
                        same = isinstance(replay, dict) and replay.get("id") == data.get("id")
                        if replay_status == 201 and not same:
                            with self.ledger.lock:
                                self.ledger.replay_mismatches.append(request.key)


def _error_code(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"http-{response.status_code}"
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("code", ""))
    return f"http-{response.status_code}"
