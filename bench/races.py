"""Races: many requests released at once, where only the database can keep order.

``storm``: ``STORM_COPIES`` concurrent copies of one signed Stripe
``payment_intent.succeeded`` (same body, same ``Stripe-Signature``) posted to the bench
company's endpoint. Goal: one 202 and the rest 200 duplicates, no 5xx, one row stored,
and — with a Celery worker consuming (``--with-worker``'s, or one started here on the
``webhooks`` queue) — the event processed exactly once, its effect (a ``Payment``, the
appointment's deposit ``paid``, one ``deposit`` history entry) applied once.

``contention``: ``CONTENTION_CLIENTS`` concurrent ``POST /api/v1/appointments/`` for one
staff member and slot, each with its own ``Idempotency-Key`` and customer, repeated on
``CONTENTION_SLOTS`` slots. Goal per slot: one 201, the rest 409 ``slot_taken``, no 5xx,
and one active appointment in the slot afterwards.

Each burst is a thread per request on one ``httpx.Client`` (a connection each), released
together by a ``threading.Barrier``. The database is checked with psql as the owner
(which bypasses RLS). Each race gives a ``Row`` (the table, ``results.json``) whose
``details`` hold its figures and ``passed``; ``print_section`` prints them.
"""

from __future__ import annotations

import ast
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as wall_time
from typing import Any

from bench import cpu, webhook
from bench.config import DB_NAME, DB_OWNER, LOG_DIR, BenchError, Options, variant_role
from bench.scenarios import BOOKING_DAYS, BOOKING_FIRST_DAY, berlin_days
from bench.server import Server, executable, log_tail, psql, run, running
from bench.wrk import Row, set_cpu
from integrations.simulator.signing import sign_stripe

RACES = ("storm", "contention")
STORM_COPIES = 100
CONTENTION_CLIENTS = 50
CONTENTION_SLOTS = 5
CONTENTION_FIRST_HOUR = 9  # local time of the first slot; one hour later each round
TIMEOUT_S = 30  # one request
PROCESS_TIMEOUT_S = 60  # the storm's event, from the burst to processed
LATE_TASKS_S = 1.0  # after processing: time for any duplicate task to run too
POLL_S = 0.05
WORKER_LOG = "celery-storm"
FINAL = ("processed", "ignored", "dead")
DUPLICATE = '{"status": "duplicate"}'  # the webhook view's 200
ACTIVE = ("pending", "confirmed")  # bookings.models.ACTIVE_STATUSES


# --- the burst --------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Answer:
    status: int | None  # None: no answer (``body`` says why)
    body: str
    sent_s: float  # after the release
    ms: float


def burst(base_url: str, requests: list[Request]) -> tuple[list[Answer], float]:
    """Post every request at once: a thread each, released by a barrier. Returns the
    answers (in order) and the seconds from the first send to the last answer."""
    import httpx

    count = len(requests)
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    released = 0.0

    def release() -> None:
        nonlocal released
        released = time.perf_counter()

    barrier = threading.Barrier(count, action=release, timeout=TIMEOUT_S)
    with (
        httpx.Client(
            base_url=base_url, trust_env=False, timeout=TIMEOUT_S, limits=limits
        ) as client,
        ThreadPoolExecutor(max_workers=count) as pool,
    ):

        def send(request: Request) -> Answer:
            barrier.wait()
            started = time.perf_counter()
            try:
                response = client.post(request.path, content=request.body, headers=request.headers)
                status, body = response.status_code, response.text[:300]
            except httpx.HTTPError as exc:
                status, body = None, f"{type(exc).__name__}: {exc}"
            ended = time.perf_counter()
            return Answer(status, body, started - released, (ended - started) * 1000)

        answers = list(pool.map(send, requests))
    wall = max(a.sent_s + a.ms / 1000 for a in answers) - min(a.sent_s for a in answers)
    return answers, wall


def nearest_rank(values: list[float], percent: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * percent // 100))  # ceil
    return round(ordered[int(rank) - 1], 1)


def statuses(answers: list[Answer]) -> dict[str, int]:
    counted = Counter("no answer" if a.status is None else str(a.status) for a in answers)
    return dict(sorted(counted.items()))


def error_code(body: str) -> str:
    """``{"error": {"code": ...}}``'s code, or ``?``."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return "?"
    error = parsed.get("error") if isinstance(parsed, dict) else None
    return str(error.get("code", "?")) if isinstance(error, dict) else "?"


def fill(row: Row, answers: list[Answer], wall: float, expected: set[str]) -> None:
    """The row's request figures: counts, rates, latency, the first body of each
    unexpected status."""
    row.measured = True
    row.requests, row.seconds = len(answers), round(wall, 3)
    ok = sum(1 for a in answers if a.status is not None and 200 <= a.status < 300)
    row.requests_per_s = round(len(answers) / wall, 1) if wall else None
    row.ok_per_s = round(ok / wall, 1) if wall else None
    latencies = [a.ms for a in answers]
    row.p50_ms, row.p99_ms = nearest_rank(latencies, 50), nearest_rank(latencies, 99)
    for code, n in statuses(answers).items():
        row.statuses[code] = row.statuses.get(code, 0) + n
    for answer in answers:
        code = "no answer" if answer.status is None else str(answer.status)
        if code not in expected and code not in row.samples:
            row.samples[code] = answer.body


def measured_burst(on: Server, requests: list[Request]) -> tuple[list[Answer], float, float, float]:
    """``burst`` with the CPU the server's gunicorn and its role's backends spent."""
    role = variant_role(on.variant)
    before = cpu.snapshot(on.master, role, DB_NAME)
    answers, wall = burst(on.base_url, requests)
    after = cpu.snapshot(on.master, role, DB_NAME)
    app, db = cpu.spent(before, after)
    return answers, wall, app, db


# --- the database -----------------------------------------------------------------------


def query(sql: str) -> list[list[str]]:
    """Rows of ``sql`` as the owner (RLS bypassed), each a list of its fields."""
    text = psql(sql, DB_OWNER, DB_NAME)
    return [line.split("|") for line in text.splitlines()]


def one(sql: str) -> list[str]:
    rows = query(sql)
    if len(rows) != 1:
        raise BenchError(f"expected one row, got {len(rows)}: {sql}")
    return rows[0]


# --- storm ------------------------------------------------------------------------------


def storm_appointment(company_id: int) -> int:
    """A seeded confirmed appointment with no deposit yet: the event pays its deposit."""
    rows = query(
        "SELECT id FROM bookings_appointment "  # noqa: S608 -- ints
        f"WHERE company_id = {int(company_id)} AND status = 'confirmed' "
        "AND deposit_status = 'none' ORDER BY start, id LIMIT 1"
    )
    if not rows:
        raise BenchError("storm: no confirmed appointment without a deposit to pay")
    return int(rows[0][0])


def storm_event(seed: dict[str, Any], event_id: str, appointment_id: int) -> Request:
    """The one signed delivery every copy repeats: the webhook scenario's event, whose
    metadata here also names an appointment, so processing has an effect."""
    company = seed["company"]["id"]
    event = webhook.payload(company, event_id)
    event["data"]["object"]["metadata"]["appointment_id"] = str(appointment_id)
    body = json.dumps(event, separators=(",", ":"))
    headers = {
        "Content-Type": "application/json",
        "Stripe-Signature": sign_stripe(body.encode(), seed["webhook"]["secret"]),
    }
    return Request(seed["webhook"]["path"], headers, body.encode())


def storm_worker_args(node: str) -> list[str]:
    return [
        executable("celery"),
        "-A",
        "askpro",
        "worker",
        "-Q",
        "webhooks",
        "--pool",
        "prefork",
        "--concurrency",
        str(webhook.WORKER_CONCURRENCY),
        "-n",
        node,
        "--without-mingle",
        "--without-gossip",
        "--loglevel",
        "INFO",
    ]


def wait_for_worker(process: subprocess.Popen[bytes], env: dict[str, str], node: str) -> None:
    celery = executable("celery")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"the storm's Celery worker exited:\n{log_tail(WORKER_LOG)}")
        try:
            run([celery, "-A", "askpro", "inspect", "ping", "-d", node, "-t", "2"], env, 30)
            return
        except BenchError:
            time.sleep(0.5)
    raise BenchError(f"the storm's Celery worker did not answer in 60 s:\n{log_tail(WORKER_LOG)}")


@contextmanager
def storm_worker(opts: Options, env: dict[str, str]) -> Iterator[bool]:
    """A Celery worker on the ``webhooks`` queue (logging at info: a line per task), unless
    ``--with-worker``'s is consuming already. Yields whether it started one."""
    if opts.with_worker:
        yield False
        return
    print("  storm: starting a Celery worker (-Q webhooks) ...", file=sys.stderr, flush=True)
    node = f"bench-storm-{os.getpid()}@{socket.gethostname()}"
    with running(WORKER_LOG, storm_worker_args(node), {**env, "LOG_LEVEL": "info"}) as process:
        wait_for_worker(process, env, node)
        yield True


def worker_tasks() -> dict[str, int]:
    """From the storm worker's log (celery's own lines, JSON): the ``webhooks.drain``
    tasks it received and the events they ended, by status, summed (the storm's event is
    the only one stored meanwhile: exactly one ``processed`` is expected); ``failed``
    counts a task that raised."""
    path = LOG_DIR / f"{WORKER_LOG}.log"
    counts: Counter[str] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        data = entry.get("data") if isinstance(entry, dict) else None
        if not isinstance(data, dict) or data.get("name") != "webhooks.drain":
            continue
        if entry.get("logger") == "celery.worker.strategy":
            counts["drains"] += 1
        elif entry.get("logger") == "celery.app.trace":
            result = data.get("return_value")
            if result is None:
                counts["failed"] += 1
                continue
            outcomes = ast.literal_eval(result) if isinstance(result, str) else result
            counts.update({str(k): int(v) for k, v in dict(outcomes).items()})
    return dict(counts)


def event_row(company_id: int, event_id: str) -> dict[str, Any] | None:
    rows = query(
        "SELECT id, status, attempts, "  # noqa: S608 -- an int and our own id
        "round(extract(epoch FROM processed_at - received_at) * 1000) "
        f"FROM webhooks_webhookevent WHERE company_id = {int(company_id)} "
        f"AND dedup_key = '{event_id}' ORDER BY id LIMIT 1"
    )
    if not rows:
        return None
    pk, status, attempts, lag = rows[0]
    return {
        "id": int(pk),
        "status": status,
        "attempts": int(attempts),
        "ms": float(lag) if lag else None,
    }


def wait_processed(company_id: int, event_id: str) -> tuple[dict[str, Any] | None, bool]:
    """Poll the event until its status is final; (its row, whether it got there)."""
    deadline = time.monotonic() + PROCESS_TIMEOUT_S
    while True:
        row = event_row(company_id, event_id)
        if row is not None and row["status"] in FINAL:
            return row, True
        if time.monotonic() > deadline:
            return row, False
        time.sleep(POLL_S)


def effect(company_id: int, intent_id: str, appointment_id: int) -> dict[str, Any]:
    """What processing did: Payment rows for the intent, the deposit, its history."""
    company = int(company_id)
    payments, payment_status = one(
        "SELECT count(*), coalesce(min(status), '-') FROM webhooks_payment "  # noqa: S608
        f"WHERE company_id = {company} AND payment_intent_id = '{intent_id}'"
    )
    (deposit,) = one(
        f"SELECT deposit_status FROM bookings_appointment WHERE id = {int(appointment_id)}"  # noqa: S608
    )
    (history,) = one(
        "SELECT count(*) FROM bookings_appointmenthistory "  # noqa: S608 -- an int
        f"WHERE appointment_id = {int(appointment_id)} AND action = 'deposit'"
    )
    return {
        "payments": int(payments),
        "payment_status": payment_status,
        "deposit_status": deposit,
        "deposit_history_entries": int(history),
    }


STORM_EFFECT = {
    "payments": 1,
    "payment_status": "succeeded",
    "deposit_status": "paid",
    "deposit_history_entries": 1,
}


def storm_problems(row: Row, duplicates: int, stored: int, event: dict[str, Any]) -> list[str]:
    """What keeps the storm from its goal (``row.details`` holds the rest)."""
    problems = []
    if row.statuses != {"200": STORM_COPIES - 1, "202": 1}:
        problems.append(f"answers {row.statuses}, not 202:1 200:{STORM_COPIES - 1}")
    if duplicates != row.statuses.get("200", 0):
        problems.append(f"{row.statuses.get('200', 0) - duplicates} 200 answer(s) not 'duplicate'")
    if stored != 1:
        problems.append(f"{stored} rows stored")
    if event.get("status") not in FINAL:
        problems.append(f"not done {PROCESS_TIMEOUT_S} s after the burst: {event or 'no row'}")
    elif event["status"] != "processed" or event["attempts"] != 1:
        problems.append(f"ended {event['status']} after {event['attempts']} attempt(s)")
    tasks = row.details["worker_tasks"]
    if tasks is not None and (tasks.get("processed", 0) != 1 or tasks.get("failed")):
        problems.append(f"the worker's tasks for the event: {tasks}")
    if row.details["effect"] != STORM_EFFECT:
        problems.append(f"effect {row.details['effect']}, not {STORM_EFFECT}")
    return problems


def storm(opts: Options, seed: dict[str, Any], on: Server) -> Row:
    company = int(seed["company"]["id"])
    event_id = f"evt_storm_{int(time.time() * 1000)}"
    ours = f"WHERE company_id = {company} AND dedup_key = '{event_id}'"
    row = Row(
        "storm",
        "POST",
        seed["webhook"]["path"],
        f"{STORM_COPIES} concurrent copies of one signed Stripe event",
        on.variant,
    )
    appointment = storm_appointment(company)
    with storm_worker(opts, on.env) as own_worker:
        request = storm_event(seed, event_id, appointment)
        print(f"  storm: {STORM_COPIES} x {event_id} at once ...", file=sys.stderr, flush=True)
        answers, wall, app, db = measured_burst(on, [request] * STORM_COPIES)
        (stored,) = one(f"SELECT count(*) FROM webhooks_webhookevent {ours}")  # noqa: S608
        event, _ = wait_processed(company, event_id)
        time.sleep(LATE_TASKS_S)
    event = event or {}
    fill(row, answers, wall, {"200", "202"})
    set_cpu(row, app, db, len(answers))
    # The drain counts every processed event of the company: leave it none of ours.
    psql(f"DELETE FROM webhooks_webhookevent {ours}", DB_OWNER, DB_NAME)  # noqa: S608
    duplicates = sum(1 for a in answers if a.status == 200 and a.body == DUPLICATE)
    row.details = {
        "goal": f"202:1 200:{STORM_COPIES - 1} (duplicate), no 5xx, 1 row stored, "
        "processed exactly once with its effect applied once",
        "event_id": event_id,
        "appointment_id": appointment,
        "copies": STORM_COPIES,
        "duplicate_bodies": duplicates,
        "rows_stored": int(stored),
        "event": event,
        "worker": "started for the storm (-Q webhooks)" if own_worker else "--with-worker's",
        "worker_tasks": worker_tasks() if own_worker and event else None,
        "effect": effect(company, f"pi_{event_id[4:]}", appointment),  # webhook.payload's
        "max_ms": round(max(a.ms for a in answers), 1),
    }
    problems = storm_problems(row, duplicates, int(stored), event)
    row.details["passed"] = not problems
    row.note = "PASS" if not problems else "FAIL: " + "; ".join(problems)
    return row


# --- contention -------------------------------------------------------------------------


def contention_slots(seed: dict[str, Any]) -> list[tuple[int, datetime]]:
    """(staff, start) of each round: on the first day after the booking scenario's days
    (which nothing else books), a different staff member and hour each."""
    tz, tomorrow = berlin_days(seed)
    day = tomorrow + timedelta(days=BOOKING_FIRST_DAY - 1 + BOOKING_DAYS)
    return [
        (
            seed["staff"][number % len(seed["staff"])],
            datetime.combine(day, wall_time(CONTENTION_FIRST_HOUR + number), tz),
        )
        for number in range(CONTENTION_SLOTS)
    ]


def booking_requests(
    seed: dict[str, Any], staff: int, start: datetime, number: int, tag: str
) -> list[Request]:
    """CONTENTION_CLIENTS bookings of one slot, each its own customer and key."""
    requests = []
    for client in range(CONTENTION_CLIENTS):
        body = {
            "service": seed["service"]["id"],
            "staff": staff,
            "start": start.isoformat(),
            # +49151 98..: the booking scenario's are +49151 00.., its probe's 9999..
            "customer": {"name": f"Contender {client}", "phone": f"+4915198{number}{client:05d}"},
        }
        headers = {
            "Authorization": f"Token {seed['api_token']}",
            "Content-Type": "application/json",
            "Idempotency-Key": f"bench-contention-{tag}-{number}-{client}",
        }
        requests.append(Request("/api/v1/appointments/", headers, json.dumps(body).encode()))
    return requests


def active_in_slot(company_id: int, staff: int, start: datetime, minutes: int) -> list[int]:
    """Ids of the active appointments of ``staff`` overlapping the slot."""
    end = start + timedelta(minutes=minutes)
    rows = query(
        "SELECT id FROM bookings_appointment "  # noqa: S608 -- ints and our own times
        f"WHERE company_id = {int(company_id)} AND staff_id = {int(staff)} "
        f"AND status IN ({', '.join(repr(status) for status in ACTIVE)}) "
        f"AND start < '{end.isoformat()}' "
        f"AND \"end\" > '{start.isoformat()}' ORDER BY id"
    )
    return [int(fields[0]) for fields in rows]


def created_id(answers: list[Answer]) -> int | None:
    for answer in answers:
        if answer.status == 201:
            try:
                return int(json.loads(answer.body)["id"])
            except (ValueError, KeyError, TypeError):
                return None
    return None


def contention(seed: dict[str, Any], on: Server) -> Row:
    company = seed["company"]["id"]
    minutes = seed["service"]["duration_minutes"]
    row = Row(
        "contention",
        "POST",
        "/api/v1/appointments/",
        f"{CONTENTION_CLIENTS} concurrent bookings of one (staff, slot), {CONTENTION_SLOTS} slots",
        on.variant,
    )
    tag = str(int(time.time()))
    rounds, every, problems = [], [], []
    app = db = 0.0
    wall = 0.0
    for number, (staff, start) in enumerate(contention_slots(seed)):
        requests = booking_requests(seed, staff, start, number, tag)
        print(
            f"  contention: {CONTENTION_CLIENTS} x staff {staff} at {start.isoformat()} ...",
            file=sys.stderr,
            flush=True,
        )
        answers, seconds, app_ms, db_ms = measured_burst(on, requests)
        app, db, wall = app + app_ms, db + db_ms, wall + seconds
        every += answers
        counted = statuses(answers)
        codes = dict(Counter(error_code(a.body) for a in answers if a.status == 409))
        active = active_in_slot(company, staff, start, minutes)
        winner = created_id(answers)
        latencies = [a.ms for a in answers]
        ok = (
            counted == {"201": 1, "409": CONTENTION_CLIENTS - 1}
            and codes == {"slot_taken": CONTENTION_CLIENTS - 1}
            and active == ([winner] if winner is not None else [-1])
        )
        if not ok:
            problems.append(
                f"slot {number + 1}: answers {counted}, 409 codes {codes}, "
                f"active appointments {active} (the 201 created {winner})"
            )
        rounds.append(
            {
                "staff": staff,
                "start": start.isoformat(),
                "statuses": counted,
                "codes_409": codes,
                "created": winner,
                "active_appointments": active,
                "p50_ms": nearest_rank(latencies, 50),
                "max_ms": round(max(latencies), 1),
                "wall_s": round(seconds, 3),
                "passed": ok,
            }
        )
    fill(row, every, wall, {"201", "409"})
    set_cpu(row, app, db, len(every))
    (customers,) = one(  # every round's: the seed wiped the company's customers
        "SELECT count(*) FROM bookings_customer "  # noqa: S608 -- an int
        f"WHERE company_id = {int(company)} AND phone LIKE '+4915198%'"
    )
    row.details = {
        "goal": f"each slot: 201:1 409:{CONTENTION_CLIENTS - 1} (slot_taken), no 5xx, "
        "1 active appointment afterwards",
        "passed": not problems,
        "clients": CONTENTION_CLIENTS,
        "slots": rounds,
        "max_ms": round(max(a.ms for a in every), 1),
        "customers_created": int(customers),
    }
    row.note = "PASS" if not problems else "FAIL: " + "; ".join(problems)
    return row


# --- the runner's entry and the report --------------------------------------------------


def measure(opts: Options, seed: dict[str, Any], on: Server) -> list[Row]:
    """The races chosen in ``opts``, on ``on`` (the rls server unless excluded)."""
    rows = []
    if "storm" in opts.scenarios:
        rows.append(storm(opts, seed, on))
    if "contention" in opts.scenarios:
        rows.append(contention(seed, on))
    return rows


def _verdict(details: dict[str, Any]) -> str:
    return "PASS" if details.get("passed") else "FAIL"


def print_section(rows: list[Row]) -> None:
    races = [row for row in rows if row.name in RACES and row.details]
    if not races:
        return
    print("\nRaces (requests released together by a barrier; the database decides):")
    for row in races:
        d = row.details
        answers = " ".join(f"{code}:{n}" for code, n in row.statuses.items())
        if row.name == "storm":
            event, effect_ = d["event"], d["effect"]
            tasks = d["worker_tasks"]
            print(
                f"  storm       {_verdict(d)}  {d['copies']} copies of {d['event_id']}: "
                f"{answers} ({d['duplicate_bodies']} 'duplicate'); rows stored "
                f"{d['rows_stored']}"
            )
            print(
                f"              event {event.get('status', '-')} after "
                f"{event.get('attempts', '-')} attempt(s), {event.get('ms') or '-'} ms "
                f"after receipt; worker tasks {tasks if tasks is not None else 'not counted'}"
                f" ({d['worker']})"
            )
            print(
                f"              effect: payments {effect_['payments']} "
                f"({effect_['payment_status']}), deposit {effect_['deposit_status']}, "
                f"deposit history entries {effect_['deposit_history_entries']}; "
                f"latency p50 {row.p50_ms} ms, max {d['max_ms']} ms"
            )
        else:
            print(
                f"  contention  {_verdict(d)}  {len(d['slots'])} slots x {d['clients']} "
                f"bookings: {answers}; latency p50 {row.p50_ms} ms, max {d['max_ms']} ms"
            )
            for n, slot in enumerate(d["slots"], 1):
                counted = " ".join(f"{code}:{k}" for code, k in slot["statuses"].items())
                codes = " ".join(f"{code}:{k}" for code, k in slot["codes_409"].items())
                print(
                    f"              slot {n} (staff {slot['staff']}, {slot['start']}): "
                    f"{counted}; 409 {codes or '-'}; active {len(slot['active_appointments'])}; "
                    f"p50 {slot['p50_ms']} ms, max {slot['max_ms']} ms"
                )
            booked = row.statuses.get("201", 0)
            print(
                f"              customers created: {d['customers_created']} ({booked} booked, "
                f"{d['customers_created'] - booked} left by refused bookings)"
            )
        if not d.get("passed"):
            print(f"              {row.note}")
