"""The four fault drills, the backup-and-restore drill and the soak.

A fault drill under steady traffic: ``before`` (baseline), inject, ``during`` (the
fault held), heal, ``recovery`` (until the first webhook and the first booking succeed
again and the inbox has no event older than 3 s unfinished, plus the drill's own
condition), ``after`` (steady again), then the invariants (chaos/checks.py).

Pass: the invariants hold, no 5xx other than 503 from the fault until recovery, no 5xx
and no unanswered request before and after, and recovery within ``--recover-timeout``.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from chaos import checks
from chaos.config import DB_NAME, DB_OWNER, PG_BIN, RESTORE_DB, ChaosError, Options
from chaos.stack import Stack, run
from chaos.traffic import Sample, Traffic
from chaos.watch import Watch

PHASES = ("before", "during", "recovery", "after")
GRACE_S = 10.0  # log lines this long after recovery still belong to the fault


@dataclass
class DrillResult:
    name: str
    fault: str
    started: float = 0.0
    injected: float = 0.0
    healed: float = 0.0
    recovered: float = 0.0
    ended: float = 0.0
    first_webhook_ok_s: float | None = None  # after healing
    first_booking_ok_s: float | None = None
    drained_s: float | None = None  # no unfinished event older than 3 s
    recovery_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    statuses: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    health: dict[str, dict[str, int]] = field(default_factory=dict)
    invariants: checks.Invariants | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems

    def phase_bounds(self) -> dict[str, tuple[float, float]]:
        return {
            "before": (self.started, self.injected),
            "during": (self.injected, self.healed),
            "recovery": (self.healed, self.recovered),
            "after": (self.recovered, self.ended),
        }

    def fault_window(self) -> tuple[float, float]:
        """When errors in the logs are this fault's (from injecting to recovery + grace)."""
        return self.injected - 1.0, (self.recovered or self.ended) + GRACE_S


class Context:
    """What every drill needs: the stack, the traffic, the watch and the options."""

    def __init__(self, stack: Stack, traffic: Traffic, watch: Watch, opts: Options) -> None:
        self.stack = stack
        self.traffic = traffic
        self.watch = watch
        self.opts = opts
        self.owner_dsn = stack.pg.url(DB_OWNER)
        self.sms_file = stack.run_dir / "sms.jsonl"


def log(message: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- measuring -------------------------------------------------------------------------


def group(kind: str) -> str:
    return "webhooks" if kind.startswith("webhook") else "bookings"


def label(sample: Sample) -> str:
    """``202``, ``409 slot_taken``, ``201 pending``, ``0 ConnectError``…"""
    return f"{sample.status} {sample.detail}".strip() if sample.detail else str(sample.status)


def answered_at(sample: Sample) -> float:
    return sample.t + sample.ms / 1000


def tally(samples: list[Sample], start: float, end: float) -> dict[str, dict[str, int]]:
    """Answers by status, counted in the phase in which they came back (a request sent
    just before the fault and failed by it belongs to the fault)."""
    counts: dict[str, Counter[str]] = {"webhooks": Counter(), "bookings": Counter()}
    for sample in samples:
        if start <= answered_at(sample) < end:
            counts[group(sample.kind)][label(sample)] += 1
    return {name: dict(sorted(c.items())) for name, c in counts.items()}


def summarize_health(watch: Watch, start: float, end: float) -> dict[str, int]:
    seen: Counter[str] = Counter()
    for sample in watch.health_between(start, end):
        if not sample.health_code:
            seen["no answer"] += 1
            continue
        bad = ", ".join(f"{n}: {s}" for n, s in sorted(sample.components.items()) if s != "ok")
        ready = "ready" if sample.ready_code == 200 else f"ready {sample.ready_code}"
        seen[f"{sample.health_code} {sample.health} ({ready}{'; ' + bad if bad else ''})"] += 1
    return dict(seen.most_common())


def first_ok(samples: list[Sample], after: float, which: str) -> float | None:
    ok = (200, 202) if which == "webhooks" else (201,)
    for sample in samples:
        if sample.t >= after and group(sample.kind) == which and sample.status in ok:
            return sample.t - after
    return None


def first_drained(watch: Watch, after: float) -> float | None:
    for sample in watch.db_between(after, time.time() + 1):
        if sample.ok and sample.backlog == 0:
            return sample.t - after
    return None


def breaker_times(watch: Watch, start: float, end: float, state: str) -> dict[str, float]:
    """When each breaker was first seen in ``state`` in [start, end), from ``start``."""
    seen: dict[str, float] = {}
    for sample in watch.health_between(start, end):
        for name, value in sample.breakers.items():
            if value == state and name not in seen:
                seen[name] = sample.t - start
    return seen


def breakers_now(watch: Watch) -> dict[str, str]:
    latest = watch.latest_health()
    return dict(latest.breakers) if latest else {}


# --- one fault drill -------------------------------------------------------------------


def fault_drill(
    ctx: Context,
    result: DrillResult,
    inject: Callable[[], None],
    heal: Callable[[], None],
    *,
    hold: Callable[[], None] | None = None,
    recovered_when: Callable[[], bool] | None = None,
) -> DrillResult:
    opts = ctx.opts
    result.started = time.time()
    log(f"{result.name}: baseline {opts.baseline_seconds} s")
    time.sleep(opts.baseline_seconds)
    result.injected = time.time()
    log(f"{result.name}: inject — {result.fault}")
    try:
        inject()
        if hold is not None:
            hold()
        else:
            time.sleep(opts.drill_seconds)
    finally:
        log(f"{result.name}: heal")
        result.healed = time.time()
        heal()
    _await_recovery(ctx, result, recovered_when)
    settle = max(5, opts.baseline_seconds)
    log(f"{result.name}: recovered after {_fmt(result.recovery_s)}; steady {settle} s")
    time.sleep(settle)
    result.ended = time.time()
    _finish(ctx, result)
    return result


def _await_recovery(
    ctx: Context, result: DrillResult, recovered_when: Callable[[], bool] | None
) -> None:
    deadline = result.healed + ctx.opts.recover_timeout
    extra_done: float | None = None
    while time.time() < deadline:
        samples = ctx.traffic.ledger.snapshot()
        result.first_webhook_ok_s = first_ok(samples, result.healed, "webhooks")
        result.first_booking_ok_s = first_ok(samples, result.healed, "bookings")
        result.drained_s = first_drained(ctx.watch, result.healed)
        if extra_done is None and (recovered_when is None or recovered_when()):
            extra_done = time.time() - result.healed
        parts = (result.first_webhook_ok_s, result.first_booking_ok_s, result.drained_s)
        if extra_done is not None and all(p is not None for p in parts):
            result.recovery_s = max(max(p for p in parts if p is not None), extra_done)
            result.recovered = result.healed + result.recovery_s
            return
        time.sleep(1)
    result.recovered = time.time()
    result.problems.append(
        f"no recovery within {ctx.opts.recover_timeout} s (webhook ok "
        f"{_fmt(result.first_webhook_ok_s)}, booking ok {_fmt(result.first_booking_ok_s)}, "
        f"drained {_fmt(result.drained_s)}, drill condition "
        f"{'met' if extra_done is not None else 'not met'})"
    )


def _finish(ctx: Context, result: DrillResult) -> None:
    samples = ctx.traffic.ledger.snapshot()
    for phase, (start, end) in result.phase_bounds().items():
        result.statuses[phase] = tally(samples, start, end)
        result.health[phase] = summarize_health(ctx.watch, start, end)
    for phase in ("before", "after"):
        for name, counts in result.statuses[phase].items():
            bad = {k: n for k, n in counts.items() if k.startswith(("0", "5"))}
            if bad:
                result.problems.append(f"{phase}: {name} failed outside the fault: {bad}")
    for phase in ("during", "recovery"):
        for name, counts in result.statuses[phase].items():
            bad = {k: n for k, n in counts.items() if k[:1] == "5" and not k.startswith("503")}
            if bad:
                result.problems.append(f"{phase}: {name} answered 5xx other than 503: {bad}")
    _exits(ctx, result)
    log(f"{result.name}: checking invariants")
    invariants = checks.check(ctx.owner_dsn, ctx.traffic.ledger, ctx.sms_file, 120)
    result.invariants = invariants
    result.problems.extend(invariants.problems())
    verdict = "PASS" if result.passed else "FAIL: " + "; ".join(result.problems)
    log(f"{result.name}: {verdict}")


def _exits(ctx: Context, result: DrillResult) -> None:
    """App processes that died on their own during the step (the supervisor restarted them)."""
    for t, what, code in ctx.stack.restarts:
        if result.started <= t <= result.ended:
            reason = ctx.stack.exit_reason(what)
            result.problems.append(
                f"{what} exited on its own (exit code {code}) {t - result.injected:+.1f} s "
                f"from the fault{': ' + repr(reason) if reason else ''}; the supervisor "
                f"started it again"
            )


def _fmt(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds:.1f} s"


# --- the drills ------------------------------------------------------------------------


def redis_drill(ctx: Context) -> DrillResult:
    stack = ctx.stack
    result = DrillResult("redis", f"SIGTERM redis-server :{stack.redis.port}, start it again")
    return fault_drill(ctx, result, stack.redis.stop, stack.redis.start)


def worker_drill(ctx: Context) -> DrillResult:
    stack = ctx.stack
    name = sorted(stack.workers)[0]
    result = DrillResult("worker", f"SIGKILL Celery worker {name}'s process group, start another")

    def inject() -> None:
        result.extra["killed_pid"] = stack.kill_worker(name)
        with checks.connect(ctx.owner_dsn) as conn:
            row = conn.execute(
                "SELECT count(*) FROM webhooks_webhookevent WHERE status = 'processing'"
            ).fetchone()
        result.extra["processing_at_kill"] = int(row[0]) if row else 0

    def heal() -> None:
        result.extra["new_worker"] = stack.start_worker(wait=False)

    fault_drill(ctx, result, inject, heal)
    # Recovery doesn't wait for the new worker: the survivor takes the load meanwhile.
    deadline = time.time() + 90
    while (ready := stack.ready_at(str(result.extra["new_worker"]))) is None:
        if time.time() > deadline:
            break
        time.sleep(1)
    result.extra["new_worker_ready_after_heal_s"] = (
        round(ready - result.healed, 1) if ready else "not ready"
    )
    return result


def postgres_drill(ctx: Context) -> DrillResult:
    pg = ctx.stack.pg
    result = DrillResult(
        "postgres",
        f"pg_ctl stop -m fast (:{pg.port}), down {ctx.opts.drill_seconds} s, pg_ctl start",
    )
    return fault_drill(ctx, result, lambda: pg.stop("fast"), pg.start)


def _sim(ctx: Context, method: str, path: str, body: dict[str, Any] | None = None) -> None:
    request = urllib.request.Request(  # noqa: S310 -- the simulator on loopback
        f"{ctx.stack.sim_url}/_sim/{path}",
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        response.read()


def breakers_status(ctx: Context) -> Any:
    try:
        return json.loads(ctx.stack.manage("breakers", "status", "--json", timeout=60))
    except (ChaosError, ValueError) as exc:
        return {"error": str(exc)[:300]}


def simulator_drill(ctx: Context) -> DrillResult:
    providers = ("calcom", "stripe")
    result = DrillResult(
        "simulator", "simulator outage mode 503 for Cal.com and Stripe, then all clear"
    )

    def inject() -> None:
        for provider in providers:
            _sim(ctx, "PUT", f"faults/{provider}", {"outage": "503"})

    def hold() -> None:
        """At least --drill-seconds, and until both breakers are open (at most 90 s)."""
        minimum = time.time() + ctx.opts.drill_seconds
        deadline = time.time() + max(90, ctx.opts.drill_seconds)
        while time.time() < deadline:
            opened = {n for n, s in breakers_now(ctx.watch).items() if s == "open"}
            if time.time() >= minimum and set(providers) <= opened:
                break
            time.sleep(0.5)
        result.extra["breakers_during"] = breakers_status(ctx)

    def heal() -> None:
        _sim(ctx, "DELETE", "faults")

    def closed() -> bool:
        states = breakers_now(ctx.watch)
        return all(states.get(p) == "closed" for p in providers)

    fault_drill(ctx, result, inject, heal, hold=hold, recovered_when=closed)
    result.extra["breakers_opened_after_s"] = breaker_times(
        ctx.watch, result.injected, result.healed, "open"
    )
    result.extra["breakers_closed_after_heal_s"] = breaker_times(
        ctx.watch, result.healed, result.ended, "closed"
    )
    result.extra["breakers_after"] = breakers_status(ctx)
    for provider in providers:
        if provider not in result.extra["breakers_opened_after_s"]:
            result.problems.append(f"the {provider} breaker never opened")
    during = result.statuses["during"]["bookings"]
    pending = during.get("201 pending", 0)
    result.extra["bookings_pending_during"] = pending
    result.extra["bookings_confirmed_during"] = during.get("201 confirmed", 0)
    if not pending:
        result.problems.append("no booking succeeded as pending during the outage")
    result.extra["calendar_backlog_drained_s"] = _calendar_drain(ctx, result)
    return result


def _calendar_drain(ctx: Context, result: DrillResult) -> float | None:
    """Bookings left pending for Cal.com are synced by the outbox once the breaker lets
    calls through (its safety-net job is due 2 min after the booking; the outbox sweep
    runs every 30 s). Seconds from healing until none is pending, within the timeout."""
    log("simulator: waiting for the deferred calendar syncs")
    deadline = result.healed + ctx.opts.recover_timeout + 120
    while time.time() < deadline:
        latest = ctx.watch.latest_db()
        if latest and latest.ok and latest.calendar_pending == 0:
            return round(time.time() - result.healed, 1)
        time.sleep(2)
    latest = ctx.watch.latest_db()
    left = latest.calendar_pending if latest else "?"
    result.problems.append(
        f"calendar syncs still pending {deadline - result.healed:.0f} s after healing: {left}"
    )
    return None


# --- backup and restore ----------------------------------------------------------------

COUNTS_SQL = """
    SELECT c.relname,
      (xpath('/row/n/text()', query_to_xml(
         format('SELECT count(*) AS n FROM %I.%I', n.nspname, c.relname), false, true, '')))[1]
         ::text::bigint
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY 1
"""  # docs/OPERATIONS.md's counts.sql


@dataclass
class BackupResult:
    dump_bytes: int = 0
    dump_s: float = 0.0
    restore_s: float = 0.0
    tables: int = 0
    rows: int = 0
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)  # source, restored
    mismatches: dict[str, tuple[int, int]] = field(default_factory=dict)
    app_check: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


def backup_drill(ctx: Context) -> BackupResult:
    """docs/OPERATIONS.md's procedure, under traffic: the dump and the source's counts
    come from one exported snapshot, so they agree exactly while writes go on."""
    result = BackupResult()
    pg = ctx.stack.pg
    dump = ctx.stack.run_dir / "askpro_chaos.dump"
    common = ["-h", "127.0.0.1", "-p", str(pg.port), "-U", DB_OWNER]
    with psycopg.connect(pg.url(DB_OWNER)) as conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        row = conn.execute("SELECT pg_export_snapshot()").fetchone()
        assert row is not None
        snapshot = str(row[0])
        source = {str(name): int(n) for name, n in conn.execute(COUNTS_SQL).fetchall()}
        log(f"backup: pg_dump -Fc as {DB_OWNER} (snapshot {snapshot})")
        started = time.time()
        run(
            [PG_BIN / "pg_dump", *common, "-d", DB_NAME, "-Fc", "--snapshot", snapshot, "-f", dump],
            timeout=600,
        )
        result.dump_s = round(time.time() - started, 1)
        conn.execute("COMMIT")
    result.dump_bytes = dump.stat().st_size
    log("backup: createdb + pg_restore into a fresh database")
    run(["createdb", *common, "--owner", DB_OWNER, RESTORE_DB])
    started = time.time()
    run(
        [
            "pg_restore",
            *common,
            "-d",
            RESTORE_DB,
            "--exit-on-error",
            "--single-transaction",
            dump,
        ],
        timeout=900,
    )
    result.restore_s = round(time.time() - started, 1)
    with psycopg.connect(pg.url(DB_OWNER, RESTORE_DB)) as conn:
        restored = {str(name): int(n) for name, n in conn.execute(COUNTS_SQL).fetchall()}
    for table in sorted(set(source) | set(restored)):
        pair = (source.get(table, -1), restored.get(table, -1))
        result.counts[table] = pair
        if pair[0] != pair[1]:
            result.mismatches[table] = pair
    result.tables = len(result.counts)
    result.rows = sum(pair[0] for pair in result.counts.values())
    if result.mismatches:
        result.problems.append(f"row counts differ: {result.mismatches}")
    if not result.rows:
        result.problems.append("the source had no rows")
    result.app_check = _check_restore_as_app(ctx)
    if result.app_check != "ok":
        result.problems.append(f"the restore fails the app's checks: {result.app_check}")
    return result


def _check_restore_as_app(ctx: Context) -> str:
    """``check --database default`` (RLS on every tenant table) and ``migrate --check``
    with the app role on the restored database, as docs/OPERATIONS.md says."""
    pg = ctx.stack.pg
    env = {
        **ctx.stack.env,
        "DATABASE_URL": f"postgres://askpro_app@127.0.0.1:{pg.port}/{RESTORE_DB}",
        "MIGRATION_DATABASE_URL": f"postgres://{DB_OWNER}@127.0.0.1:{pg.port}/{RESTORE_DB}",
    }
    for args in (["check", "--database", "default"], ["migrate", "--check"]):
        try:
            run([sys.executable, "manage.py", *args], env, timeout=300)
        except ChaosError as exc:
            return f"manage.py {' '.join(args)}: {str(exc)[-400:]}"
    return "ok"


def drop_restore(ctx: Context) -> None:
    pg = ctx.stack.pg
    try:
        pg.psql(f"DROP DATABASE IF EXISTS {RESTORE_DB}")
    except ChaosError as exc:
        log(f"could not drop {RESTORE_DB}: {exc}")


# --- the soak --------------------------------------------------------------------------


def soak(ctx: Context) -> DrillResult:
    result = DrillResult("soak", f"none: steady traffic for {ctx.opts.soak_seconds} s")
    result.started = time.time()
    log(f"soak: {ctx.opts.soak_seconds} s of steady traffic")
    time.sleep(ctx.opts.soak_seconds)
    result.injected = result.healed = result.recovered = result.ended = time.time()
    samples = ctx.traffic.ledger.snapshot()
    result.statuses["soak"] = tally(samples, result.started, result.ended)
    result.health["soak"] = summarize_health(ctx.watch, result.started, result.ended)
    for name, counts in result.statuses["soak"].items():
        bad = {k: n for k, n in counts.items() if k.startswith(("0", "5"))}
        if bad:
            result.problems.append(f"soak: {name} failed: {bad}")
    _exits(ctx, result)
    backlog = [s.backlog for s in ctx.watch.db_between(result.started, result.ended) if s.ok]
    result.extra["max_backlog"] = max(backlog) if backlog else None
    invariants = checks.check(ctx.owner_dsn, ctx.traffic.ledger, ctx.sms_file, 120)
    result.invariants = invariants
    result.problems.extend(invariants.problems())
    return result


def save_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, default=str))
