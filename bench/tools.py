"""``--scenario tools``: the voice agent's live tools over HTTP (issue 8's latency goals).

``POST /webhooks/retell/<endpoint>/functions/<name>/``, signed as Retell signs
(``X-Retell-Signature``, fresh for each request), against the first server (rls), from
one client, one request at a time: latency, not throughput. Cal.com is the provider
simulator in its own process (``python -m bench.tools simulator``) with 100 ms of
latency on every Cal.com request (``PUT /_sim/faults/calcom``); the servers get
``CALCOM_API_BASE`` pointing at it.

The data (``python -m bench.tools setup``, as the app role, idempotent): a second company
``bench-voice`` (so the other scenarios' company stays without Cal.com), one branch
answered by the agent ``AGENT_ID``, three staff members with Cal.com user ids working
every day 08:00-20:00 with a break at 12:00-12:30, two 30-minute services they all
offer — ``Haarschnitt`` (not in Cal.com) and ``Färben`` (Cal.com event type
``EVENT_TYPE_ID``) — the company's Retell endpoint (its secret: ``RETELL_KEY``) and
Cal.com connected with a simulator key. Every run wipes its appointments, customers
and outbox jobs. The simulator knows the event type and a one-hour busy block a day for
each staff member over the warm and cold days.

First an untimed warm-up (``warm_up``): every worker through a cold lookup and a
booking once, as a worker that has served a while has been; a fresh worker's first
Cal.com request and first booking each cost it 100-150 ms once (lazy imports, Celery's
producer, the seam's httpx client).

Rows (each request timed from sending to the whole answer; signing excluded):

1. ``check_availability`` warm: the same day (tomorrow) ``WARM_REQUESTS`` times, its
   busy times cached by the untimed warm-up before.
2. ``check_availability`` cold: a new day each request (``COLD_REQUESTS`` days from the
   day after tomorrow), so each misses the busy-times cache and fetches every staff
   member's busy times from Cal.com (in parallel).
3. ``book_appointment`` on ``Haarschnitt`` (no Cal.com event type): ``BOOKINGS``
   distinct starts over consecutive days, a new call id and a new caller each, no staff
   member named. Each is preceded, untimed, by a ``check_availability`` of its day, as
   in a call (the agent offers times, then books one): the booking invalidated its staff
   member's cached busy times, so the check before the next booking refetches them, as
   a real call's check would.
4. The same on ``Färben``, kept in Cal.com: the saga also creates the Cal.com booking
   (one more simulator request, 100 ms) before it confirms.

Around each timed request the runner clears the simulator's request log and reads it
after (how many Cal.com requests the request made), and reads the CPU time of the
server's gunicorn processes and its PostgreSQL backends (``/proc``). Goals (issue 8, this
2-core machine): warm p99 <= 50 ms, cold p99 <= 300 ms, book p99 <= 150 ms; the book goal
is shown against both booking rows.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as wall_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bench import cpu
from bench.config import DB_NAME, BenchError, variant_role
from bench.server import Server, child_pids, run, simulator_process

COMPANY_SLUG = "bench-voice"
TIMEZONE = "Europe/Berlin"
AGENT_ID = "agent_bench_voice_0000000001"
RETELL_KEY = "key_bench_voice_retell_not_a_secret"  # the bench endpoint's secret
CALCOM_KEY = "cal_bench_voice_simulator"  # the simulator takes any cal_ key
EVENT_TYPE_ID = 9001  # seeded in the simulator, set on the Cal.com service
STAFF = (("Anna Bench", 7001), ("Ben Bench", 7002), ("Cem Bench", 7003))  # Cal.com user ids
SHIFT = (wall_time(8, 0), wall_time(20, 0))
BREAK = (wall_time(12, 0), wall_time(12, 30))
SLOT_MINUTES = 30
PLAIN_SERVICE, CALCOM_SERVICE = "Haarschnitt", "Färben"
CALLER_PHONE = "+49152{:08d}"  # new callers; the bench company's customers use +49160/+49151

LATENCY_MS = 100
WARMUP_ROUNDS = 2  # untimed, concurrent: every worker through each path (``warm_up``)
WARMUP_REQUESTS = 10  # untimed, one at a time: the warm day cached just before its row
WARM_REQUESTS = 300
COLD_REQUESTS = 100
BOOKINGS = 200  # per service
# Local days, counted from today in the branch's zone; all inside the 366-day horizon.
WARM_DAY = 1
COLD_FIRST_DAY = 2  # .. COLD_FIRST_DAY + COLD_REQUESTS - 1
PLAIN_FIRST_DAY = 110
CALCOM_FIRST_DAY = 150
WARMUP_FIRST_DAY = 200  # the warm-up's cold lookups: WARMUP_ROUNDS x capacity days
WARMUP_BOOKING_DAY = 300  # and its bookings, from this day on
BUSY_BLOCK = timedelta(hours=1)  # in the simulator: one a day per staff member, warm+cold days
GOALS_MS = {"warm": 50.0, "cold": 300.0, "book": 150.0}
TIMEOUT_S = 30.0
SLOWEST = 5  # requests kept in results.json per row, with what they did


# --- the data (a subprocess, as the app role) ---------------------------------------------


def setup() -> dict[str, Any]:
    """Create or reset the company ``bench-voice``; what the runner needs (no secrets)."""
    from django.db import transaction

    from integrations.credentials import connect
    from tenants.context import tenant_context
    from tenants.models import Company

    with transaction.atomic():
        company, _ = Company.objects.update_or_create(
            slug=COMPANY_SLUG,
            defaults={"name": "Bench Voice", "timezone": TIMEZONE, "country": "DE", "active": True},
        )
        with tenant_context(company):
            _wipe()
            branch = _branch()
            plain = _service(PLAIN_SERVICE, None)
            synced = _service(CALCOM_SERVICE, EVENT_TYPE_ID)
            staff = [_staff_member(branch, name, user, [plain, synced]) for name, user in STAFF]
            endpoint = _retell_endpoint()
            connect("calcom", CALCOM_KEY)
    return {
        "company": {"id": company.pk, "slug": company.slug},
        "branch": {"id": branch.pk, "timezone": branch.timezone, "agent_id": AGENT_ID},
        "services": {
            "plain": {"id": plain.pk, "name": plain.name},
            "calcom": {"id": synced.pk, "name": synced.name, "event_type": EVENT_TYPE_ID},
        },
        "staff": staff,
        "functions_path": f"{endpoint}functions/",
    }


def _wipe() -> None:
    from bookings.models import Appointment, Closure, Customer, IdempotencyRecord, TimeOff
    from integrations.models import OutboxJob

    for model in (Appointment, IdempotencyRecord, Customer, TimeOff, Closure, OutboxJob):
        model.objects.all().delete()


def _branch() -> Any:
    from tenants.models import Branch

    Branch.objects.filter(retell_agent_id=AGENT_ID).exclude(name="Voice Mitte").update(
        retell_agent_id=None
    )
    branch, _ = Branch.objects.update_or_create(
        name="Voice Mitte",
        defaults={
            "timezone": TIMEZONE,
            "country": "DE",
            "phone": "+49301234599",
            "retell_agent_id": AGENT_ID,
        },
    )
    return branch


def _service(name: str, event_type: int | None) -> Any:
    from bookings.models import Service

    service, _ = Service.objects.update_or_create(
        name=name,
        defaults={
            "duration_minutes": SLOT_MINUTES,
            "slot_interval_minutes": SLOT_MINUTES,
            "min_notice_minutes": 60,
            "horizon_days": 366,
            "buffer_minutes": 0,
            "deposit": 0,
            "calcom_event_type_id": event_type,
            "active": True,
        },
    )
    return service


def _staff_member(branch: Any, name: str, calcom_user: int, services: list[Any]) -> int:
    from bookings.models import StaffMember, StaffService, Weekday, WorkingHours

    staff, _ = StaffMember.objects.update_or_create(
        branch=branch, name=name, defaults={"active": True, "calcom_user_id": calcom_user}
    )
    for service in services:
        StaffService.objects.get_or_create(staff=staff, service=service)
    for weekday in Weekday.values:
        WorkingHours.objects.update_or_create(
            staff=staff,
            weekday=weekday,
            defaults={
                "start": SHIFT[0],
                "end": SHIFT[1],
                "break_start": BREAK[0],
                "break_end": BREAK[1],
            },
        )
    return int(staff.pk)


def _retell_endpoint() -> str:
    from webhooks.models import WebhookEndpoint

    endpoint, _ = WebhookEndpoint.objects.update_or_create(
        provider="retell", defaults={"secret": RETELL_KEY, "active": True}
    )
    return str(endpoint.path)


def prepare(env: dict[str, str]) -> dict[str, Any]:
    """Run ``setup`` as a subprocess with the runner's (app role) environment."""
    data: dict[str, Any] = json.loads(run([sys.executable, "-m", "bench.tools", "setup"], env))
    return data


# --- the simulator (its own process) ------------------------------------------------------


def local_day(offset: int) -> date:
    return datetime.now(ZoneInfo(TIMEZONE)).date() + timedelta(days=offset)


def at(day: date, moment: wall_time) -> datetime:
    return datetime.combine(day, moment, ZoneInfo(TIMEZONE))


def busy_blocks() -> list[dict[str, Any]]:
    """A busy hour a day for each staff member (staff k from 09:00 + 2k h) over the warm and
    cold days: the busy times each lookup fetches and subtracts."""
    blocks = []
    for offset in range(WARM_DAY, COLD_FIRST_DAY + COLD_REQUESTS):
        day = local_day(offset)
        for k, (_, user) in enumerate(STAFF):
            start = at(day, wall_time(9 + 2 * k)).astimezone(UTC)
            blocks.append(
                {
                    "start": start.isoformat().replace("+00:00", "Z"),
                    "end": (start + BUSY_BLOCK).isoformat().replace("+00:00", "Z"),
                    "userId": user,
                }
            )
    return blocks


def serve() -> None:
    """``python -m bench.tools simulator``: print the simulator's URL, serve until stdin ends."""
    from integrations.simulator import ProviderSimulator

    with ProviderSimulator() as sim:
        with sim.lock:
            calcom = sim.state["calcom"]
            calcom["event_types"][EVENT_TYPE_ID] = {
                "id": EVENT_TYPE_ID,
                "title": CALCOM_SERVICE,
                "slug": "faerben",
                "lengthInMinutes": SLOT_MINUTES,
            }
            calcom["busy"].extend(busy_blocks())
        print(sim.url, flush=True)
        sys.stdin.read()


@contextmanager
def simulator() -> Iterator[str]:
    """The provider simulator in its own process; yields its URL (``/calcom``, ``/_sim``)."""
    print("  tools: starting the provider simulator ...", file=sys.stderr, flush=True)
    with simulator_process("bench.tools") as url:
        yield url


def server_env(env: dict[str, str], sim: str) -> dict[str, str]:
    """A server's environment with Cal.com at the simulator."""
    return {**env, "CALCOM_API_BASE": f"{sim}/calcom/v2"}


# --- measuring (the runner) ---------------------------------------------------------------


@dataclass
class Sample:
    ms: float
    status: str  # the answer's "status" (or "http <code>")
    busy_calls: int  # Cal.com busy-times requests the tool call made
    booking_calls: int  # Cal.com booking creations
    calcom_after_ms: float | None  # from sending the call to its first Cal.com request
    calcom_spread_ms: float  # first to last arrival of its Cal.com requests at the simulator
    app_ms: float | None
    db_ms: float | None


class Cpu:
    """CPU time of one server's gunicorn processes and of its role's PostgreSQL backends
    (single-threaded: ``/proc/<pid>/sched``, exact), read from ``/proc`` around each
    request. Processes are found afresh each time (a
    backend lives ``DB_CONN_MAX_AGE`` seconds, a worker ``max_requests``): one that appears
    in between counts whole, one that exits in between is lost."""

    def __init__(self, on: Server) -> None:
        self.master = on.master
        self.marker = f": {variant_role(on.variant)} {DB_NAME} ".encode()  # the ps title

    def workers(self) -> list[int]:
        try:
            children = Path(f"/proc/{self.master}/task/{self.master}/children").read_text()
        except OSError:
            return [self.master, *child_pids(self.master)]
        return [self.master, *(int(pid) for pid in children.split())]

    def backends(self) -> list[int]:
        """``postgres: [cluster: ]<role> <database> <client> <state>``"""
        found = []
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                title = Path(entry.path, "cmdline").read_bytes()
            except OSError:
                continue
            if title.startswith(b"postgres:") and self.marker in title:
                found.append(int(entry.name))
        return found

    @staticmethod
    def process_ms(pid: int) -> float | None:
        """User + system CPU of the whole process, its threads included (a cold lookup
        fetches in threads, which ``/proc/<pid>/sched`` — the main thread's — leaves out);
        clock ticks, so only a row's mean is meaningful."""
        try:
            text = Path(f"/proc/{pid}/stat").read_text()
            fields = text[text.rindex(")") + 2 :].split()  # from the 3rd field (state) on
            return (int(fields[11]) + int(fields[12])) * cpu.TICK_MS
        except (OSError, ValueError, IndexError):
            return None

    def read(self) -> tuple[dict[int, float], dict[int, float]]:
        app = {pid: ms for pid in self.workers() if (ms := self.process_ms(pid)) is not None}
        db = {pid: ms for pid in self.backends() if (ms := cpu.process_ms(pid)) is not None}
        return app, db

    @staticmethod
    def spent(before: dict[int, float], after: dict[int, float]) -> float:
        return sum(ms - before.get(pid, 0.0) for pid, ms in after.items())


class Agent:
    """Signs and posts tool calls as Retell's agent; reads the simulator's request log."""

    def __init__(self, on: Server, seed: dict[str, Any], sim: str) -> None:
        import httpx

        from integrations.simulator.signing import sign_retell

        self.sign = sign_retell
        self.client = httpx.Client(base_url=on.base_url, trust_env=False, timeout=TIMEOUT_S)
        self.control = httpx.Client(base_url=f"{sim}/_sim", trust_env=False, timeout=TIMEOUT_S)
        self.path = str(seed["functions_path"])
        self.agent_id = str(seed["branch"]["agent_id"])
        self.cpu = Cpu(on)

    def close(self) -> None:
        self.client.close()
        self.control.close()

    def latency(self, ms: int) -> dict[str, Any]:
        """Cal.com answers ``ms`` later from now on; the simulator's faults as it reports them."""
        response = self.control.put("/faults/calcom", json={"latency_ms": ms})
        response.raise_for_status()
        faults: dict[str, Any] = response.json()["faults"]
        return faults

    def _request(
        self, name: str, args: dict[str, Any], call_id: str, caller: str
    ) -> tuple[str, bytes, dict[str, str]]:
        call = {
            "call_id": call_id,
            "agent_id": self.agent_id,
            "call_type": "phone_call",
            "direction": "inbound",
            "from_number": caller,
            "to_number": "+49301234599",
            "call_status": "ongoing",
        }
        body = json.dumps({"name": name, "call": call, "args": args}).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Retell-Signature": self.sign(body, RETELL_KEY),  # now: Retell allows 5 min
        }
        return f"{self.path}{name}/", body, headers

    @staticmethod
    def _status(code: int, text: str) -> tuple[str, dict[str, Any]]:
        """The answer's ``status`` (``error:<code>`` for refusals) and the answer."""
        try:
            answer = json.loads(text)
        except ValueError:
            answer = None
        if code != 200 or not isinstance(answer, dict):
            return f"http {code}", {"body": text[:300]}
        status = str(answer.get("status"))
        return (f"error:{answer.get('code')}" if status == "error" else status), answer

    def call(
        self, name: str, args: dict[str, Any], call_id: str, caller: str
    ) -> tuple[str, dict[str, Any]]:
        """One untimed tool call."""
        path, body, headers = self._request(name, args, call_id, caller)
        response = self.client.post(path, content=body, headers=headers)
        return self._status(response.status_code, response.text)

    def timed(
        self, name: str, args: dict[str, Any], call_id: str, caller: str
    ) -> tuple[Sample, dict[str, Any]]:
        """One timed tool call, with the Cal.com requests and the CPU it caused."""
        path, body, headers = self._request(name, args, call_id, caller)
        self.control.delete("/requests").raise_for_status()
        app_before, db_before = self.cpu.read()
        sent, began = time.time(), time.perf_counter_ns()  # the simulator logs time.time()
        response = self.client.post(path, content=body, headers=headers)
        elapsed = time.perf_counter_ns() - began
        app_after, db_after = self.cpu.read()
        logged = self.control.get("/requests", params={"provider": "calcom"})
        logged.raise_for_status()
        requests = logged.json()["requests"]
        status, answer = self._status(response.status_code, response.text)
        sample = Sample(
            ms=elapsed / 1e6,
            status=status,
            busy_calls=sum("busy-times" in str(r["path"]) for r in requests),
            booking_calls=sum(
                r["method"] == "POST" and str(r["path"]).rstrip("/").endswith("/bookings")
                for r in requests
            ),
            calcom_after_ms=(
                round((min(float(r["at"]) for r in requests) - sent) * 1000, 1)
                if requests
                else None
            ),
            calcom_spread_ms=spread_ms([float(r["at"]) for r in requests]),
            app_ms=Cpu.spent(app_before, app_after),
            db_ms=Cpu.spent(db_before, db_after),
        )
        return sample, answer


def rounded(values: dict[str, Any]) -> dict[str, Any]:
    return {key: round(v, 1) if isinstance(v, float) else v for key, v in values.items()}


def spread_ms(moments: list[float]) -> float:
    return round((max(moments) - min(moments)) * 1000, 1) if moments else 0.0


def percentile(ordered: list[float], percent: float) -> float:
    """Nearest rank."""
    return ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)]


def _mean(values: list[float]) -> float:
    return round(sum(values) / len(values), 2) if values else 0.0


@dataclass
class ToolRow:
    key: str
    label: str
    goal: str  # which goal applies: "warm", "cold" or "book"
    samples: list[Sample] = field(default_factory=list)
    workers_replaced: int = 0
    problems: list[str] = field(default_factory=list)  # e.g. a pre-check that wasn't ok

    def calcom_split(self) -> dict[str, float]:
        """Medians of where a call's time went when it reached Cal.com: before its first
        Cal.com request arrived, and after that request's latency."""
        split = [
            (s.calcom_after_ms, s.ms - s.calcom_after_ms - LATENCY_MS)
            for s in self.samples
            if s.calcom_after_ms is not None
        ]
        if not split:
            return {}
        before = sorted(pair[0] for pair in split)
        after = sorted(pair[1] for pair in split)
        return {
            "before_calcom_p50_ms": round(percentile(before, 50), 1),
            "after_calcom_p50_ms": round(percentile(after, 50), 1),
        }

    def figures(self) -> dict[str, Any]:
        ordered = sorted(s.ms for s in self.samples)
        if not ordered:
            return {"label": self.label, "requests": 0, "problems": self.problems}
        goal, p99 = GOALS_MS[self.goal], percentile(ordered, 99)
        return {
            "label": self.label,
            "requests": len(ordered),
            "p50_ms": round(percentile(ordered, 50), 1),
            "p90_ms": round(percentile(ordered, 90), 1),
            "p99_ms": round(p99, 1),
            "mean_ms": round(sum(ordered) / len(ordered), 1),
            "max_ms": round(ordered[-1], 1),
            "goal_p99_ms": goal,
            "verdict": "PASS" if p99 <= goal else "MISS",
            "answers": dict(Counter(s.status for s in self.samples).most_common()),
            "calcom_busy_requests_per_call": _mean([s.busy_calls for s in self.samples]),
            "calcom_booking_requests_per_call": _mean([s.booking_calls for s in self.samples]),
            "app_cpu_ms_per_call": _mean([s.app_ms or 0.0 for s in self.samples]),
            "db_cpu_ms_per_call": _mean([s.db_ms or 0.0 for s in self.samples]),
            **self.calcom_split(),
            "workers_replaced": self.workers_replaced,
            "slowest": [
                {"n": n, **rounded(asdict(sample))}
                for n, sample in sorted(
                    enumerate(self.samples), key=lambda pair: pair[1].ms, reverse=True
                )[:SLOWEST]
            ],
            "problems": self.problems[:10],
        }


def booking_slot(first_day: int, n: int) -> datetime:
    """The ``n``-th bookable start from local day ``first_day`` on: every slot of the
    shift but the break's, one day after the other."""
    starts = []
    moment = datetime.combine(date.min, SHIFT[0])
    while (moment + timedelta(minutes=SLOT_MINUTES)).time() <= SHIFT[1]:
        if not BREAK[0] <= moment.time() < BREAK[1]:
            starts.append(moment.time())
        moment += timedelta(minutes=SLOT_MINUTES)
    return at(local_day(first_day + n // len(starts)), starts[n % len(starts)])


def _run(agent: Agent, row: ToolRow, count: int, step: Callable[[int], Sample]) -> ToolRow:
    print(f"  tools: {row.label}: {count} requests ...", file=sys.stderr, flush=True)
    before = set(agent.cpu.workers())
    for n in range(count):
        row.samples.append(step(n))
    row.workers_replaced = len(before - set(agent.cpu.workers()))
    return row


def _booking(
    agent: Agent, row: ToolRow, service: str, first_day: int, phones: int
) -> Callable[[int], Sample]:
    """The ``n``-th call of a booking row: an untimed check of the day, then the timed
    booking of the ``n``-th start, in one call (same call id, a new caller each)."""

    def step(n: int) -> Sample:
        start = booking_slot(first_day, n)
        call_id, caller = f"call_{row.key}_{n:04d}", CALLER_PHONE.format(phones + n)
        check = {"service": service, "date": start.date().isoformat()}
        offered, _ = agent.call("check_availability", check, call_id, caller)
        if offered != "ok":
            row.problems.append(f"the check before booking {n} answered {offered}")
        args = {"service": service, "start": start.isoformat(), "name": f"Bench Caller {n:03d}"}
        sample, answer = agent.timed("book_appointment", args, call_id, caller)
        if sample.status != "booked":
            row.problems.append(f"booking {n} at {start.isoformat()}: {json.dumps(answer)[:300]}")
        return sample

    return step


def warm_up(agent: Agent, capacity: int, plain: str, synced: str) -> None:
    """Every worker through every path once, untimed: ``capacity`` calls at a time, each
    waiting at least 100 ms for Cal.com, so each sync worker takes one. A worker's first
    Cal.com request (the seam's httpx client: httpcore imported, an SSL context) and its
    first booking (Celery's producer pool, imports) cost it 100-150 ms once; that is what
    a fresh worker pays, not the steady state the rows measure."""
    print(f"  tools: warm-up, {WARMUP_ROUNDS} x {capacity} at a time ...", file=sys.stderr)
    with ThreadPoolExecutor(max_workers=capacity) as pool:
        for round_ in range(WARMUP_ROUNDS):
            first = capacity * round_
            days = [local_day(WARMUP_FIRST_DAY + first + k) for k in range(capacity)]
            checks = [{"service": plain, "date": day.isoformat()} for day in days]
            list(pool.map(lambda a: agent.call("check_availability", a, "call_warmup", ""), checks))
            starts = [booking_slot(WARMUP_BOOKING_DAY, first + k) for k in range(capacity)]

            def book(start: datetime, service: str = synced) -> None:
                args = {"service": service, "start": start.isoformat(), "name": "Bench Warm-up"}
                caller = CALLER_PHONE.format(90_000 + int(start.timestamp()) % 10_000)
                call_id = f"call_warmup_{start.timestamp():.0f}"
                status, answer = agent.call("book_appointment", args, call_id, caller)
                if status not in ("booked", "pending"):
                    raise BenchError(f"tools: a warm-up booking answered {status}: {answer}")

            list(pool.map(book, starts))


def measure(on: Server, seed: dict[str, Any], sim: str) -> dict[str, Any]:
    """The four rows against ``on``, Cal.com at ``sim`` answering LATENCY_MS late."""
    plain, synced = seed["services"]["plain"]["name"], seed["services"]["calcom"]["name"]
    warm_day = local_day(WARM_DAY).isoformat()
    agent = Agent(on, seed, sim)
    began = time.monotonic()

    def warm(n: int) -> Sample:
        args = {"service": plain, "date": warm_day}
        return agent.timed("check_availability", args, f"call_warm_{n:04d}", "")[0]

    def cold(n: int) -> Sample:
        args = {"service": plain, "date": local_day(COLD_FIRST_DAY + n).isoformat()}
        return agent.timed("check_availability", args, f"call_cold_{n:04d}", "")[0]

    book_plain = ToolRow("book_plain", f"book_appointment, {plain} (not in Cal.com)", "book")
    book_synced = ToolRow("book_calcom", f"book_appointment, {synced} (kept in Cal.com)", "book")
    runs: list[tuple[ToolRow, int, Callable[[int], Sample]]] = [
        (ToolRow("warm", "check_availability, warm cache (same day)", "warm"), WARM_REQUESTS, warm),
        (
            ToolRow("cold", "check_availability, cold cache (new day each)", "cold"),
            COLD_REQUESTS,
            cold,
        ),
        (book_plain, BOOKINGS, _booking(agent, book_plain, plain, PLAIN_FIRST_DAY, 0)),
        (book_synced, BOOKINGS, _booking(agent, book_synced, synced, CALCOM_FIRST_DAY, 10_000)),
    ]
    figures: dict[str, Any] = {
        "server": {"variant": on.variant, "url": on.base_url},
        "latency_ms": LATENCY_MS,
        "data": {key: value for key, value in seed.items() if key != "functions_path"},
        "goals_p99_ms": GOALS_MS,
        "skipped": "",
        "rows": {},
    }
    try:
        figures["simulator_faults"] = agent.latency(LATENCY_MS)
        check = {"service": plain, "date": warm_day}
        probe, answer = agent.call("check_availability", check, "call_probe", "")
        if probe != "ok":  # a 404: the tools aren't built (yet)
            figures["skipped"] = f"the probe's check_availability answered {probe}: {answer}"
            return figures
        warm_up(agent, on.capacity, plain, synced)
        for n in range(WARMUP_REQUESTS):  # the warm day cached again, just before its row
            agent.call("check_availability", check, f"call_warmup_{n:04d}", "")
        rows = [_run(agent, row, count, step) for row, count, step in runs]
    finally:
        agent.close()
        figures["seconds"] = round(time.monotonic() - began, 1)
    figures["rows"] = {row.key: row.figures() for row in rows}
    return figures


# --- the report ---------------------------------------------------------------------------


def _calcom_calls(row: dict[str, Any]) -> str:
    parts = []
    for key, name in (
        ("calcom_busy_requests_per_call", "busy"),
        ("calcom_booking_requests_per_call", "book"),
    ):
        if value := row.get(key):
            parts.append(f"{name} {value:g}")
    return ", ".join(parts) or "0"


def print_table(figures: dict[str, Any]) -> None:
    """The tools' rows, in the style of the main table, with the goals."""
    server = figures["server"]
    print(
        f"\ntools: the voice agent's tools, signed POSTs to the '{server['variant']}' server, "
        f"one at a time from one client; Cal.com: the provider simulator (own process) "
        f"+ {figures['latency_ms']} ms a request; {figures['seconds']} s"
    )
    if figures["skipped"]:
        print(f"  skipped: {figures['skipped']}")
        return
    header = (
        "measurement",
        "n",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "goal p99",
        "",
        "Cal.com req/call",
        "app CPU",
        "db CPU",
        "answers",
    )
    lines = [header]
    for row in figures["rows"].values():
        if not row["requests"]:
            lines.append((row["label"], "0", *("-",) * 9, ""))
            continue
        lines.append(
            (
                row["label"],
                str(row["requests"]),
                f"{row['p50_ms']:,.1f}",
                f"{row['p90_ms']:,.1f}",
                f"{row['p99_ms']:,.1f}",
                f"{row['max_ms']:,.1f}",
                f"≤ {row['goal_p99_ms']:g}",
                row["verdict"],
                _calcom_calls(row),
                f"{row['app_cpu_ms_per_call']:,.2f}",
                f"{row['db_cpu_ms_per_call']:,.2f}",
                " ".join(f"{status}:{n}" for status, n in row["answers"].items()),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        cells = (
            cell.ljust(width) if column in (0, 8, 11) else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(line, widths, strict=True))
        )
        print("  ".join(cells).rstrip())
    for row in figures["rows"].values():
        if "before_calcom_p50_ms" in row:
            print(
                f"  {row['label']}: p50 {row['p50_ms']:,.1f} ms = "
                f"{row['before_calcom_p50_ms']:,.1f} ms before its first Cal.com request + "
                f"{figures['latency_ms']} ms Cal.com + {row['after_calcom_p50_ms']:,.1f} ms "
                "after (medians of each part)"
            )
        if row.get("workers_replaced"):
            print(f"  {row['label']}: {row['workers_replaced']} worker(s) recycled meanwhile")
        for problem in row.get("problems", [])[:3]:
            print(f"  {row['label']}: {problem}")
    print(
        "  (Cal.com req/call: simulator requests per timed call — busy: busy-times lookups, "
        "book: booking creations; app/db CPU: ms per call, gunicorn and PostgreSQL backends; "
        "each booking follows an untimed check_availability of its day in the same call)"
    )


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "askpro.settings")
    import django

    django.setup()
    json.dump(setup(), sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    if sys.argv[1:] == ["simulator"]:
        serve()
    elif sys.argv[1:] == ["setup"]:
        main()
    else:
        sys.exit("usage: python -m bench.tools setup|simulator")
