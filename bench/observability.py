"""Issue 9: what logging and metrics cost on the webhook endpoint, on against off.

Two gunicorns on the rls set-up (the app role, the same database, the same workers and
class as the other scenarios); only the environment differs:

* **on**, production: ``LOG_LEVEL=info`` (django-structlog's ``request_finished``
  access line per request and whatever else is logged at info -- for a webhook its
  Celery receiver's ``task_enqueued`` -- each through the redaction processor),
  ``LOG_FORMAT=json``, ``METRICS_ENABLED=true`` (django-prometheus' before/after
  middlewares and our domain counters);
* **off**: ``LOG_LEVEL=error`` (no access line) and ``METRICS_ENABLED=false`` (no
  prometheus middleware). The domain counters (``askpro_webhook_events``) still count:
  docker/gunicorn.conf.py sets ``PROMETHEUS_MULTIPROC_DIR`` whatever the setting, so
  under gunicorn they are still written to the mmap'd files, one ``inc()`` a request.

Each server's ``PROMETHEUS_MULTIPROC_DIR`` is its own directory in ``/dev/shm`` (a
tmpfs, as ``/tmp`` is in docker/compose.yml); its stdout and stderr go to
``.run/bench/gunicorn-observability-<on|off>.log``, as every bench server's do.

The runner (``bench/run.py`` ``observe``) starts them after the other servers have
stopped, warms both up on the webhook, counts what one request writes to the log
(``log_per_request``), then loads both in alternating slices with the webhook scenario's
signed events (``bench/lua/webhook.lua``, numbered on from slice to slice so no id
repeats). This module has the profiles, the servers, the count and the verdict.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench import report, webhook
from bench.config import LOG_DIR, OBSERVABILITY, RLS, Options
from bench.report import fmt, fmt2
from bench.server import Server, server_for
from bench.wrk import Row, Scenario

ON, OFF = "on", "off"
GOAL_PERCENT = 15.0  # issue 9: on may cost at most this much throughput
PROFILES = {
    ON: {"LOG_LEVEL": "info", "LOG_FORMAT": "json", "METRICS_ENABLED": "true"},
    OFF: {"LOG_LEVEL": "error", "LOG_FORMAT": "json", "METRICS_ENABLED": "false"},
}
LOG_COUNT_REQUESTS = 50  # sent one at a time to each server to count its log output
# Events signed for the run: enough for this many requests a second on both servers
# through the warm-ups and every slice (a thread that ran out would repeat ids: 200s).
MAX_RATE = 1000
EVENTS_FOLDER = LOG_DIR / "observability-events"
SETTLE_S = 0.3


def port_of(opts: Options, profile: str) -> int:
    """After the rls and no rls servers' ports: 8767 (on) and 8768 (off) by default."""
    return opts.port + 2 + (0 if profile == ON else 1)


def metrics_dir(port: int) -> Path:
    """The server's PROMETHEUS_MULTIPROC_DIR, on a tmpfs as in production:
    ``make_metrics_dirs`` creates it, ``remove_metrics_dirs`` deletes it."""
    shm = Path("/dev/shm")  # noqa: S108 -- a directory of our own, made and removed by us
    base = shm if shm.is_dir() else Path(tempfile.gettempdir())
    return base / f"askpro-bench-metrics-{port}"


def servers(opts: Options, env: dict[str, str]) -> list[Server]:
    """The on and off servers: ``env`` (the rls variant's) plus the profile."""
    made = []
    for profile in (ON, OFF):
        port = port_of(opts, profile)
        base = server_for(opts, env, RLS)
        profile_env = {
            **base.env,
            **PROFILES[profile],
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir(port)),
            "GUNICORN_BIND": f"127.0.0.1:{port}",
        }
        made.append(Server(profile, port, profile_env, scenario=OBSERVABILITY))
    return made


def make_metrics_dirs(made: list[Server]) -> None:
    """Empty directories: with the app preloaded, the master creates its metrics (and
    their files) before gunicorn's ``on_starting`` makes the directory."""
    for on in made:
        folder = Path(on.env["PROMETHEUS_MULTIPROC_DIR"])
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)


def remove_metrics_dirs(made: list[Server]) -> dict[str, dict[str, int]]:
    """Delete the servers' metrics directories; returns what each held (files, bytes)."""
    held = {}
    for on in made:
        folder = Path(on.env["PROMETHEUS_MULTIPROC_DIR"])
        files = [path for path in folder.glob("*.db") if path.is_file()] if folder.is_dir() else []
        held[on.variant] = {"files": len(files), "bytes": sum(p.stat().st_size for p in files)}
        shutil.rmtree(folder, ignore_errors=True)
    return held


def events_per_thread(opts: Options) -> int:
    seconds = 2 * (opts.warmup + opts.observability_slices * opts.slice_seconds)
    return MAX_RATE * seconds // opts.threads + 1000


def header(opts: Options, made: list[Server]) -> list[str]:
    """The header's line about this scenario's servers."""
    shown = " and ".join(f"'{on.variant}' at {on.base_url} ({_settings(on.env)})" for on in made)
    return [
        f"Observability: the webhook on two more servers (rls set-up, LOG_FORMAT=json), "
        f"{shown}; {opts.observability_slices} x {opts.slice_seconds} s each, alternating, "
        "after the others stop"
    ]


def sign_events(opts: Options, seed: dict[str, Any]) -> Path:
    """``evt_obs_<thread>_<n>``: ids of their own, apart from the webhook scenario's."""
    return webhook.write_events(
        seed, opts.threads, events_per_thread(opts), tag="obs", folder=EVENTS_FOLDER
    )


def scenario(seed: dict[str, Any], folder: Path) -> Scenario:
    return Scenario(
        OBSERVABILITY,
        "POST",
        seed["webhook"]["path"],
        "webhook.lua",
        f"the webhook scenario (signed Stripe {webhook.EVENT_TYPE}, a new id each) "
        "with logging and metrics on (production) and off",
        {"BENCH_EVENTS_DIR": str(folder)},
    )


# --- what one request writes ------------------------------------------------------------


def wait_idle(on: Server, limit: float = 15) -> int:
    """Until the server has answered nothing more for a while (wrk leaves up to one
    request a connection queued, which it still serves); returns its count."""
    deadline = time.monotonic() + limit
    count, size = served(on), log_size(on)
    while time.monotonic() < deadline:
        time.sleep(SETTLE_S)
        now = served(on), log_size(on)
        if now == (count, size):
            break
        count, size = now
    return count


def log_per_request(
    on: Server, seed: dict[str, Any], count: int = LOG_COUNT_REQUESTS
) -> dict[str, Any]:
    """Send ``count`` signed events one at a time to the idle server and read what its
    log gained: lines and bytes per request, the lines by their ``event``, a sample of
    each. Per request: per request the server counted (``answered``, normally ``count``)."""
    path = LOG_DIR / f"{on.log}.log"
    served_before = wait_idle(on)
    start = path.stat().st_size
    statuses: Counter[str] = Counter()
    for n in range(count):
        status, _ = webhook.send(on.base_url, seed, f"evt_obslog_{on.variant}_{n}")
        statuses[str(status)] += 1
    answered = wait_idle(on) - served_before
    with path.open("rb") as log:
        log.seek(start)
        written = log.read()
    lines = written.splitlines()
    events, samples = _by_event(lines)
    return {
        "requests": count,
        "answered": answered,
        "statuses": dict(sorted(statuses.items())),
        "lines": len(lines),
        "bytes": len(written),
        "lines_per_request": round(len(lines) / max(answered, 1), 2),
        "bytes_per_request": round(len(written) / max(answered, 1), 1),
        "lines_by_event": dict(events.most_common()),
        "samples": samples,
    }


def _by_event(lines: list[bytes]) -> tuple[Counter[str], dict[str, str]]:
    """The lines counted by their ``event`` field, and the first of each."""
    events: Counter[str] = Counter()
    samples: dict[str, str] = {}
    for line in lines:
        try:
            event = str(json.loads(line).get("event", "?"))
        except (ValueError, AttributeError):
            event = "(not JSON)"
        events[event] += 1
        samples.setdefault(event, line.decode(errors="replace")[:1000])
    return events, samples


def served(on: Server) -> int:
    """Webhook requests the server has answered: ``askpro_webhook_events_total`` (every
    outcome) summed over its workers' files. Both profiles keep it (see the module's
    docstring). wrk's count misses the requests still queued when it stops: with 16
    connections and 5 sync workers, up to 16 a slice that the server still serves."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=on.env["PROMETHEUS_MULTIPROC_DIR"])
    total = 0.0
    for metric in registry.collect():
        if metric.name == "askpro_webhook_events":
            total += sum(s.value for s in metric.samples if s.name.endswith("_total"))
    return int(total)


def log_size(on: Server) -> int:
    path = LOG_DIR / f"{on.log}.log"
    return path.stat().st_size if path.exists() else 0


def log_during(on: Server, start: int, requests: int | None) -> dict[str, Any]:
    """What the log gained under load from byte ``start``: per request (as the server
    counted them, ``served``) and by event (slow-query lines would show here)."""
    if not requests:
        return {}
    with (LOG_DIR / f"{on.log}.log").open("rb") as log:
        log.seek(start)
        written = log.read()
    lines = written.splitlines()
    events, _ = _by_event(lines)
    return {
        "bytes": len(written),
        "lines": len(lines),
        "requests": requests,
        "bytes_per_request": round(len(written) / requests, 1),
        "lines_per_request": round(len(lines) / requests, 3),
        "lines_by_event": dict(events.most_common()),
    }


# --- the verdict ------------------------------------------------------------------------


def _diff(on: float | None, off: float | None) -> tuple[float | None, float | None]:
    if on is None or off is None:
        return None, None
    return round(on - off, 3), (round(100 * (on - off) / off, 1) if off else None)


def cost(on: Row, off: Row) -> dict[str, Any]:
    """on against off: the throughput cost ``(off - on) / off`` with the goal, the
    latency and CPU differences, and the cost slice pair by slice pair (95 %)."""
    throughput = None
    if on.ok_per_s is not None and off.ok_per_s:
        throughput = round(100 * (off.ok_per_s - on.ok_per_s) / off.ok_per_s, 1)
    # paired_change gives on/off - 1 per pair; the cost is its opposite.
    pairs = report.paired_change(
        on.per_slice.get("ok_per_s", []), off.per_slice.get("ok_per_s", [])
    )
    low, high = pairs["low_percent"], pairs["high_percent"]
    paired = {
        "pairs": pairs["pairs"],
        "mean_percent": None if pairs["mean_percent"] is None else -pairs["mean_percent"],
        "low_percent": None if high is None else -high,
        "high_percent": None if low is None else -low,
    }
    p50, p50_pct = _diff(on.p50_ms, off.p50_ms)
    p99, p99_pct = _diff(on.p99_ms, off.p99_ms)
    app, app_pct = _diff(on.app_ms_per_req, off.app_ms_per_req)
    db, db_pct = _diff(on.db_ms_per_req, off.db_ms_per_req)
    passed = None if throughput is None else throughput <= GOAL_PERCENT
    return {
        "goal_percent": GOAL_PERCENT,
        "throughput_cost_percent": throughput,
        "passed": passed,
        "mark": "-" if passed is None else "PASS" if passed else "FAIL",
        "paired_slices_cost_percent": paired,
        "p50_change_ms": p50,
        "p50_change_percent": p50_pct,
        "p99_change_ms": p99,
        "p99_change_percent": p99_pct,
        "app_ms_per_req_change": app,
        "app_ms_per_req_change_percent": app_pct,
        "db_ms_per_req_change": db,
        "db_ms_per_req_change_percent": db_pct,
    }


def _figures(row: Row) -> dict[str, Any]:
    return {
        "requests_per_s": row.requests_per_s,
        "ok_per_s": row.ok_per_s,
        "p50_ms": row.p50_ms,
        "p99_ms": row.p99_ms,
        "app_ms_per_req": row.app_ms_per_req,
        "db_ms_per_req": row.db_ms_per_req,
    }


def summary(
    opts: Options, made: list[Server], rows: list[Row], logs: dict[str, Any], extra: dict[str, Any]
) -> dict[str, Any]:
    """What results.json keeps under ``observability``."""
    found = {row.variant: row for row in rows if row.measured}
    on, off = found.get(ON), found.get(OFF)
    return {
        "profiles": {
            on_.variant: {
                "port": on_.port,
                **PROFILES[on_.variant],
                "PROMETHEUS_MULTIPROC_DIR": on_.env["PROMETHEUS_MULTIPROC_DIR"],
                "log": f".run/bench/{on_.log}.log",
            }
            for on_ in made
        },
        "slices": opts.observability_slices,
        "slice_s": opts.slice_seconds,
        "connections": opts.connections,
        "on": None if on is None else _figures(on),
        "off": None if off is None else _figures(off),
        "cost": None if on is None or off is None else cost(on, off),
        "log_per_request": logs,
        **extra,
    }


def _signed(value: float | None, unit: str, digits: int = 1) -> str:
    return "-" if value is None else f"{value:+,.{digits}f}{unit}"


def _change(ms: float | None, percent: float | None) -> str:
    """``+1.20 ms (+4.5 %)``"""
    return f"{_signed(ms, ' ms', 2)} ({_signed(percent, ' %')})"


def _settings(profile: dict[str, Any]) -> str:
    return f"LOG_LEVEL={profile['LOG_LEVEL']}, METRICS_ENABLED={profile['METRICS_ENABLED']}"


def _measured(name: str, profile: dict[str, Any], row: dict[str, Any] | None) -> str:
    if row is None:
        return f"  {name:<3}  {_settings(profile)}: not measured"
    return (
        f"  {name:<3}  {_settings(profile):<38} {fmt(row['ok_per_s']):>8} 2xx/s"
        f"   p50 {fmt(row['p50_ms'])} ms   p99 {fmt(row['p99_ms'])} ms"
        f"   CPU/request app {fmt2(row['app_ms_per_req'])} ms,"
        f" PostgreSQL {fmt2(row['db_ms_per_req'])} ms"
    )


def _verdict(c: dict[str, Any]) -> list[str]:
    paired = c["paired_slices_cost_percent"]
    interval = ""
    if paired["low_percent"] is not None:
        interval = (
            f"; slice pairs: mean {paired['mean_percent']:.1f} %, 95 % "
            f"{paired['low_percent']:.1f} to {paired['high_percent']:.1f} %"
        )
        if paired["low_percent"] <= GOAL_PERCENT <= paired["high_percent"]:
            interval += " (contains the goal: borderline, rerun)"
    throughput = c["throughput_cost_percent"]
    shown = "-" if throughput is None else f"{throughput:.1f} %"
    app = _change(c["app_ms_per_req_change"], c["app_ms_per_req_change_percent"])
    db = _change(c["db_ms_per_req_change"], c["db_ms_per_req_change_percent"])
    return [
        f"  cost: throughput (off - on) / off = {shown}   {c['mark']} "
        f"(goal <= {GOAL_PERCENT:.0f} %){interval}",
        f"        p50 {_change(c['p50_change_ms'], c['p50_change_percent'])}"
        f"   p99 {_change(c['p99_change_ms'], c['p99_change_percent'])}"
        f"   CPU/request app {app}, PostgreSQL {db}",
    ]


def _log_line(name: str, logs: dict[str, Any]) -> str:
    count, answered = logs["requests"], max(logs["answered"], 1)
    events = ", ".join(f"{event} {n / answered:g}" for event, n in logs["lines_by_event"].items())
    statuses = " ".join(f"{code}:{n}" for code, n in logs["statuses"].items())
    extra = "" if logs["answered"] == count else f", the server counted {logs['answered']}"
    return (
        f"  log, '{name}': {logs['lines_per_request']:g} lines, "
        f"{logs['bytes_per_request']:,.0f} bytes per request"
        f"{f' ({events})' if events else ''}; {count} requests one at a time, {statuses}{extra}"
    )


def print_section(figures: dict[str, Any]) -> None:
    print(
        f"\nLogging and metrics on the webhook endpoint (issue 9): 'on' relative to 'off', "
        f"{figures['slices']} slice pairs of {figures['slice_s']} s, order alternating, "
        f"{figures['connections']} connections:"
    )
    for name in (ON, OFF):
        print(_measured(name, figures["profiles"][name], figures[name]))
    if figures["cost"] is not None:
        for line in _verdict(figures["cost"]):
            print(line)
    for name in (ON, OFF):
        if logs := figures["log_per_request"].get(name):
            print(_log_line(name, logs))
    if during := figures.get("log_during_slices"):
        events = ", ".join(f"{event} {n:,}" for event, n in during["lines_by_event"].items())
        print(
            f"  log, 'on', under load: {during['bytes'] / 1e6:,.1f} MB, {during['lines']:,} lines"
            f" for {during['requests']:,} requests ({during['bytes_per_request']:,.0f} bytes,"
            f" {during['lines_per_request']:g} lines each; {events})"
        )
    if held := figures.get("metrics_files"):
        shown = ", ".join(
            f"'{name}' {held[name]['files']} files, {held[name]['bytes'] / 1024:,.0f} KiB"
            for name in held
        )
        print(f"  metrics files at the end: {shown} ('off' keeps the domain counters there)")
    if seconds := figures.get("wall_s"):
        print(f"  (the scenario took {seconds:.0f} s: servers, warm-ups, the count, the slices)")
    if figures.get("warning"):
        print(f"  {figures['warning'].strip()}")
    sys.stdout.flush()
