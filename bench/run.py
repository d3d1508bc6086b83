"""`make bench`: serve AskPro with gunicorn on PostgreSQL and Redis, load it with wrk.

Steps: create the ``askpro_bench`` database if missing, migrate as the owner (which
grants the app role and forces RLS), reset the ``bench`` company
(``bench/setup_data.py``, as the app role) and Redis db 3, then start two gunicorns on
the same database: one connecting as the app role, bound by row-level security
("rls", the production set-up), one as the owner, which bypasses it ("no rls"). wrk
loads them over loopback: health and availability on the rls server, then list and
booking on both, in short slices that alternate between the two servers (AB BA AB ...)
so other load on the machine hits both alike. Prints a table and the RLS cost, writes
``bench/results.json``. Whatever happens, the processes it started are stopped before
it exits. ``observability`` (``bench/observability.py``) then starts two more gunicorns,
logging and metrics on and off, and compares them on the webhook the same way.
``breaker`` is in-process (``bench/breaker.py``): after the servers stop, or alone
without them. ``storm`` and ``contention`` (``bench/races.py``) release many requests at
once on the rls server, after list and booking. See ``bench/README.md``.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from bench import breaker, cpu, observability, races, report, server, tools, webhook
from bench.config import (
    COMPARED,
    DB_APP,
    DB_NAME,
    IN_PROCESS,
    OBSERVABILITY,
    BenchError,
    Options,
    bench_env,
    parse_args,
    variant_role,
)
from bench.scenarios import probe, scenarios
from bench.server import Server
from bench.wrk import Row, Scenario, parse_wrk, set_cpu, wrk

WEBHOOKS = ("webhook", OBSERVABILITY)  # every event new: 202 only
SECOND_HALF = webhook.EVENTS_PER_THREAD // 2


def verdict(row: Row) -> Row:
    if not row.measured:
        return row
    if not any(code.startswith("2") for code in row.statuses):
        row.note = "no 2xx answers: these are not the endpoint's figures"
    elif set(row.statuses) - ({"202"} if row.name in WEBHOOKS else {"200", "201"}):
        row.note = "unexpected statuses: see samples in results.json"
    return row


def probed(row: Row, status: int | None, body: str) -> bool:
    """Record the probe; False when it says the endpoint isn't there (404)."""
    row.probe = {"status": status, "body": body} if body else {"status": status}
    if status == 404:
        row.note = f"skipped: the probe got 404 (endpoint not built yet?) {' '.join(body.split())}"
        return False
    return True


# After wrk stops, the requests the workers are in (one each, under load) still finish:
# wait for them, so their CPU is counted whole rather than by chance, and count them
# (wrk doesn't).
SETTLE_S = 0.3


def load_once(
    opts: Options,
    scenario: Scenario,
    on: Server,
    seconds: int,
    extra: dict[str, str] | None = None,
    served: Callable[[Server], int] | None = None,
) -> Row:
    """One wrk run against ``on``, with the CPU its gunicorn and backends spent.

    CPU per request divides by wrk's count plus one request per worker; with
    ``served`` (the server's own count of requests completed), by what it counted."""
    row = Row(scenario.name, scenario.method, scenario.path, scenario.what, on.variant)
    role = variant_role(on.variant)
    count_before = served(on) if served else 0
    before = cpu.snapshot(on.master, role, DB_NAME)
    output = wrk(opts, scenario, on.base_url, on.env, seconds, extra)
    time.sleep(SETTLE_S)
    after = cpu.snapshot(on.master, role, DB_NAME)
    count_after = served(on) if served else 0
    parse_wrk(output, row)
    row.measured = True
    in_flight = min(on.capacity, opts.connections)
    requests = count_after - count_before if served else (row.requests or 0) + in_flight
    set_cpu(row, *cpu.spent(before, after), requests)
    return row


def measure(opts: Options, scenario: Scenario, seed: dict[str, Any], on: Server) -> Row:
    """One wrk run of ``--duration`` seconds against one server."""
    row = Row(scenario.name, scenario.method, scenario.path, scenario.what, on.variant)
    if not probed(row, *probe(on.base_url, scenario, seed)):
        return row
    print(f"  {row.label}: {opts.duration} s ...", file=sys.stderr, flush=True)
    measured = load_once(opts, scenario, on, opts.duration)
    measured.probe = row.probe
    return verdict(measured)


def measure_sliced(
    opts: Options,
    scenario: Scenario,
    seed: dict[str, Any],
    servers: list[Server],
    state: dict[str, int],
    served: Callable[[Server], int] | None = None,
) -> list[Row]:
    """``opts.slices`` runs of ``--slice`` seconds on each server, alternating which
    goes first; one combined row per server. ``state["booking_start"]`` carries the
    booking numbering from run to run (they share the database)."""
    probes: dict[str, Row] = {}
    active = []
    for number, on in enumerate(servers):
        row = Row(scenario.name, scenario.method, scenario.path, scenario.what, on.variant)
        probes[on.variant] = row
        if probed(row, *probe(on.base_url, scenario, seed, number)):
            active.append(on)
    slices: dict[str, list[Row]] = {on.variant: [] for on in active}
    if active:
        print(
            f"  {scenario.name}: {opts.slices} x {opts.slice_seconds} s on "
            f"{' / '.join(on.variant for on in active)}, alternating ...",
            file=sys.stderr,
            flush=True,
        )
    for number in range(opts.slices):
        for on in active if number % 2 == 0 else reversed(active):
            extra = {"BENCH_HISTOGRAM": "1", "BENCH_START": str(state["booking_start"])}
            row = load_once(opts, scenario, on, opts.slice_seconds, extra, served)
            if row.next_index is not None:
                state["booking_start"] = max(state["booking_start"], row.next_index)
            slices[on.variant].append(row)
    rows = []
    for on in servers:
        if on.variant not in slices:
            rows.append(probes[on.variant])
            continue
        row = report.combine(slices[on.variant])
        row.probe = probes[on.variant].probe
        rows.append(verdict(row))
    return rows


def warm_up(opts: Options, seed: dict[str, Any], on: Server) -> None:
    if opts.warmup:
        print(f"  warm-up {on.variant}: {opts.warmup} s ...", file=sys.stderr, flush=True)
        me = Scenario("warmup", "GET", "/api/v1/me/", "me.lua", "")
        wrk(opts, me, on.base_url, on.env, opts.warmup, {"BENCH_TOKEN": seed["api_token"]})


def check_roles(servers: list[Server]) -> dict[str, int]:
    """After the warm-up every server holds connections: are they as the right roles?"""
    roles = server.client_roles()
    for on in servers:
        if variant_role(on.variant) not in roles:
            raise BenchError(
                f"no connection as {variant_role(on.variant)} after the warm-up of the "
                f"'{on.variant}' server (seen: {roles or 'none'})"
            )
    return roles


def load(opts: Options, seed: dict[str, Any], servers: list[Server]) -> list[Row]:
    """The compared scenarios first, while both servers have served the same: health
    and availability, on one server only, would recycle its workers (max_requests)
    and leave it with fresh forks (cold caches, copy-on-write faults) for the rest."""
    state = {"booking_start": 0}
    rows: list[Row] = []
    wanted = [s for s in scenarios(seed) if s.name in opts.scenarios]
    workers = {on.variant: set(server.child_pids(on.master)) for on in servers}
    for scenario in [s for s in wanted if s.name in COMPARED]:
        rows += measure_sliced(opts, scenario, seed, servers, state)
    recycled(servers, workers, rows)
    # The races next, on the first server: before the webhook scenario leaves a backlog
    # in the queue the storm's worker would have to get through first.
    rows += races.measure(opts, seed, servers[0])
    for scenario in [s for s in wanted if s.name not in COMPARED]:
        # measured as in production only: the first server (rls unless excluded)
        if scenario.name == "webhook":  # signed now: Stripe's tolerance is 300 s
            print("  webhook: signing events ...", file=sys.stderr, flush=True)
            folder = webhook.write_events(seed, opts.threads)
            scenario.env["BENCH_EVENTS_DIR"] = str(folder)
            # The workers `health` made gunicorn replace (max_requests) open their
            # connections and warm up here, not during the row; the warm-up posts the
            # second half of each thread's events, the row the first.
            warm_up_webhook(opts, scenario, servers[0], {"booking_start": SECOND_HALF})
        rows.append(measure(opts, scenario, seed, servers[0]))
    order = {variant: n for n, variant in enumerate(opts.variants)}
    # Table order: what ran on one server, then the compared rows grouped by variant.
    return sorted(rows, key=lambda row: (row.name in COMPARED, order[row.variant]))


def recycled(servers: list[Server], before: dict[str, set[int]], rows: list[Row]) -> None:
    """Note on the compared rows when a server replaced workers during them."""
    for on in servers:
        replaced = len(before[on.variant] - set(server.child_pids(on.master)))
        if replaced:
            for row in rows:
                if row.variant == on.variant and row.name in COMPARED:
                    note = f"{replaced} worker(s) recycled (max_requests) during the comparison"
                    row.note = f"{row.note}; {note}" if row.note else note


def warm_up_webhook(opts: Options, scenario: Scenario, on: Server, state: dict[str, int]) -> None:
    """``--warmup`` seconds of the scenario itself, numbering events on from ``state``."""
    if not opts.warmup:
        return
    print(f"  warm-up {on.log}: {opts.warmup} s ...", file=sys.stderr, flush=True)
    extra = {"BENCH_START": str(state["booking_start"])}
    row = Row(scenario.name, scenario.method, scenario.path, scenario.what, on.variant)
    parse_wrk(wrk(opts, scenario, on.base_url, on.env, opts.warmup, extra), row)
    state["booking_start"] = max(state["booking_start"], row.next_index or 0)


def observe(
    opts: Options,
    env: dict[str, str],
    seed: dict[str, Any],
    workers: int,
    threads: int,
    settle: bool,
) -> tuple[list[Row], dict[str, Any]]:
    """Issue 9: two gunicorns on the rls set-up, logging and metrics on and off (only the
    environment differs), warmed up on the webhook; what one request writes to the log;
    then the webhook on both in alternating slices, as list and booking are compared."""
    made = observability.servers(opts, env)
    # After other scenarios, let the machine settle again (a wait just happened if not).
    busy = cpu.wait_for_quiet(opts.quiet_wait if settle else 0)
    started = time.monotonic()
    print("  observability: signing events ...", file=sys.stderr, flush=True)
    scenario = observability.scenario(seed, observability.sign_events(opts, seed))
    state = {"booking_start": 0}  # the next line of each thread's events file
    sliced = replace(opts, compare_seconds=opts.observability_seconds)  # its slices
    try:
        observability.make_metrics_dirs(made)
        with server.serving(made, workers) as masters:
            made = [
                replace(on, master=masters[on.variant], capacity=workers * threads) for on in made
            ]
            for on in made:
                warm_up_webhook(opts, scenario, on, state)
            print("  observability: counting log lines ...", file=sys.stderr, flush=True)
            logs = {on.variant: observability.log_per_request(on, seed) for on in made}
            roles = server.client_roles()
            if DB_APP not in roles:
                raise BenchError(f"no connection as {DB_APP} after the warm-up (seen: {roles})")
            workers_before = {on.variant: set(server.child_pids(on.master)) for on in made}
            log_before = observability.log_size(made[0])
            rows = measure_sliced(sliced, scenario, seed, made, state, observability.served)
            for row, on in zip(rows, made, strict=True):
                replaced = len(workers_before[on.variant] - set(server.child_pids(on.master)))
                if replaced:
                    note = f"{replaced} worker(s) recycled (max_requests) during the slices"
                    row.note = f"{row.note}; {note}" if row.note else note
    finally:
        held = observability.remove_metrics_dirs(made)
    wall = time.monotonic() - started
    busy_after = cpu.busy_percent()
    during = observability.log_during(made[0], log_before, rows[0].cpu_requests)
    warnings = cpu.busy_warning(busy, "just before it") + cpu.busy_warning(
        busy_after, "just after it"
    )
    extra = {
        "db_connections_after_warmup": roles,
        "cpu_busy_before_percent": busy,
        "cpu_busy_after_percent": busy_after,
        "log_during_slices": during,
        "metrics_files": held,
        "wall_s": round(wall, 1),
        "warning": warnings,
    }
    return rows, observability.summary(opts, made, rows, logs, extra)


def bench_in_process(opts: Options, env: dict[str, str]) -> None:
    """Only in-process scenarios (``--scenario breaker``): no database, no servers."""
    busy = cpu.wait_for_quiet(opts.quiet_wait)
    if warning := cpu.busy_warning(busy):
        print(warning)
    figures = breaker.measure(env)
    busy_after = cpu.busy_percent()
    breaker.print_table(figures)
    if warning := cpu.busy_warning(busy_after, "just after the run"):
        print(f"\n{warning}", end="")
    machine = report.machine_facts({}, busy, busy_after)
    report.write_document(opts, {"machine": machine, "breaker": figures})


@contextmanager
def provider_simulator(opts: Options, servers: list[Server]) -> Iterator[tuple[list[Server], str]]:
    """With ``tools``: the provider simulator, and the servers with Cal.com pointing at it."""
    if "tools" not in opts.scenarios:
        yield servers, ""
        return
    with tools.simulator() as sim:
        yield [replace(on, env=tools.server_env(on.env, sim)) for on in servers], sim


def serve(
    opts: Options,
    seed: dict[str, Any],
    servers: list[Server],
    config: dict[str, Any],
    voice: Any,
) -> tuple[list[Row], dict[str, int], Any]:
    """The rls and no rls servers: warm-up, the wrk scenarios, then the voice tools."""
    workers = int(config["workers"])
    tool_figures = None
    with (
        provider_simulator(opts, servers) as (servers, sim),
        server.serving(servers, workers) as masters,
        server.celery_if(opts, servers[0].env),
    ):
        capacity = workers * int(config["threads"])
        servers = [replace(on, master=masters[on.variant], capacity=capacity) for on in servers]
        for on in servers:
            warm_up(opts, seed, on)
        roles = check_roles(servers)
        rows = load(opts, seed, servers)
        if voice is not None:  # last: one client, one request at a time, rls server
            tool_figures = tools.measure(servers[0], voice, sim)
    return rows, roles, tool_figures


def bench(opts: Options) -> None:
    env = bench_env(opts)  # the rls variant's: migrate and seed as the app role would
    if not set(opts.scenarios) - set(IN_PROCESS):
        bench_in_process(opts, env)
        return
    # observability alone needs only its own two servers, not these.
    served = set(opts.scenarios) - {*IN_PROCESS, OBSERVABILITY}
    servers = [server.server_for(opts, env, variant) for variant in opts.variants if served]
    observed = observability.servers(opts, env) if OBSERVABILITY in opts.scenarios else []
    for on in [*servers, *observed]:
        if server.port_in_use(on.port):
            raise BenchError(f"port {on.port} is already in use; pass --port")
    print("preparing database (migrate as the owner) and data ...", file=sys.stderr, flush=True)
    server.ensure_database()
    server.migrate(env)
    seed = server.seed(env)
    voice = tools.prepare(env) if "tools" in opts.scenarios else None
    config = server.gunicorn_config(env)
    busy = cpu.wait_for_quiet(opts.quiet_wait)
    extra = observability.header(opts, observed) if observed else []
    report.print_header(opts, config, seed, servers, cpu.busy_warning(busy), extra)
    rows: list[Row] = []
    roles: dict[str, int] = {}
    tool_figures = None
    if servers:
        rows, roles, tool_figures = serve(opts, seed, servers, config, voice)
    if "drain" in opts.scenarios:  # after the servers stop: the worker has the CPUs
        rows.append(webhook.drain(env, seed))
    observed_figures = None
    if observed:  # after the drain, which would otherwise process its events too
        settle = bool(servers) or "drain" in opts.scenarios
        observed_rows, observed_figures = observe(
            opts, env, seed, int(config["workers"]), int(config["threads"]), settle
        )
        rows += observed_rows
    figures = breaker.measure(env) if "breaker" in opts.scenarios else None
    busy_after = cpu.busy_percent()
    comparison = report.compare(rows)
    if rows:
        report.print_table(rows)
    races.print_section(rows)
    report.print_comparison(comparison, opts)
    if observed_figures:
        observability.print_section(observed_figures)
    if tool_figures:
        tools.print_table(tool_figures)
    if figures:
        breaker.print_table(figures)
    if warning := cpu.busy_warning(busy_after, "just after the run"):
        print(f"\n{warning}", end="")
    results = {
        "machine": report.machine_facts(config, busy, busy_after),
        "data": {
            **{key: value for key, value in seed.items() if key not in ("api_token", "webhook")},
            "webhook_path": seed["webhook"]["path"],
        },
        "servers": [
            {"variant": on.variant, "port": on.port, "role": variant_role(on.variant)}
            for on in servers
        ],
        "db_connections_after_warmup": roles,
        "rows": rows,
        "comparison": comparison,
        "observability": observed_figures,
        "tools": tool_figures,
        "breaker": figures,
    }
    report.write_results(opts, env, results)


def _terminate(signum: int, frame: object) -> None:
    # A second Ctrl-C must not cut the clean-up short: ignore further signals.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)
    raise KeyboardInterrupt


# Every scenario in the order of a full run; the races aren't in bench/config.py's list.
def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    # Also SIGINT: a shell starts background jobs with SIGINT ignored, and Python keeps that.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _terminate)
    try:
        bench(opts)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted; servers stopped", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
