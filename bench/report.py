"""The report: machine facts, the table, the RLS comparison and ``results.json``."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from importlib import metadata
from math import sqrt
from pathlib import Path
from statistics import mean, stdev
from typing import Any

from bench.config import (
    COMPARED,
    DB_APP,
    DB_NAME,
    DB_OWNER,
    NO_RLS,
    REDIS_URL,
    RLS,
    ROOT,
    THROTTLE_RATE,
    THROTTLE_VARS,
    Options,
)
from bench.scenarios import slots_per_day
from bench.server import Server, executable, psql
from bench.wrk import Row, ok_count, percentile_ms, set_cpu

# --- the machine ------------------------------------------------------------------------


def version_of(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def machine_facts(
    server: dict[str, Any], busy: float | None, busy_after: float | None
) -> dict[str, Any]:
    # `wrk -v` prints its version, then its usage, and exits 1.
    version = subprocess.run(  # noqa: S603 -- fixed argv
        [executable("wrk"), "-v"], capture_output=True, text=True, check=False
    )
    wrk_version = (version.stdout or version.stderr).splitlines() or ["?"]
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_busy_before_percent": busy,
        "cpu_busy_after_percent": busy_after,
        "cpu": cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "django": version_of("django"),
        "djangorestframework": version_of("djangorestframework"),
        "gunicorn": version_of("gunicorn"),
        "wrk": wrk_version[0].split(" [")[0],
        "postgresql": psql("SHOW server_version"),
        "gunicorn_config": server,
    }


# --- combining slices -------------------------------------------------------------------


def combine(rows: list[Row]) -> Row:
    """One row for the slices of a (scenario, variant): rates over the summed requests
    and seconds, p50/p99 from the merged latency histograms (the mean of the slices'
    when wrk didn't print them); each slice's figures in per_slice."""
    first = rows[0]
    row = Row(first.name, first.method, first.path, first.what, first.variant)
    row.slices = len(rows)
    row.measured = all(r.measured and r.seconds for r in rows)
    if row.measured:
        row.requests = sum(r.requests or 0 for r in rows)
        row.seconds = round(sum(r.seconds or 0 for r in rows), 3)
    for r in rows:
        for code, n in r.statuses.items():
            row.statuses[code] = row.statuses.get(code, 0) + n
        for name, n in r.socket_errors.items():
            row.socket_errors[name] = row.socket_errors.get(name, 0) + n
        for value, n in r.histogram.items():
            row.histogram[value] = row.histogram.get(value, 0) + n
        row.non_2xx_3xx += r.non_2xx_3xx
        row.samples = {**r.samples, **row.samples}
    row.statuses = dict(sorted(row.statuses.items()))
    if row.measured and row.seconds:
        row.requests_per_s = round((row.requests or 0) / row.seconds, 1)
        row.ok_per_s = round(ok_count(row) / row.seconds, 1)
        for attr, percent in (("p50_ms", 50.0), ("p99_ms", 99.0)):
            values = [getattr(r, attr) for r in rows if getattr(r, attr) is not None]
            merged = percentile_ms(row.histogram, percent)
            if all(r.histogram for r in rows) and merged is not None:
                setattr(row, attr, merged)
            elif values:
                setattr(row, attr, round(mean(values), 3))
    if row.measured and all(r.app_cpu_ms is not None for r in rows):
        app = sum(r.app_cpu_ms or 0 for r in rows)
        db = sum(r.db_cpu_ms or 0 for r in rows)
        set_cpu(row, app, db, sum(r.cpu_requests or 0 for r in rows))
    row.per_slice = {attr: [getattr(r, attr) for r in rows] for attr in PER_SLICE}
    return row


PER_SLICE = ("ok_per_s", "p50_ms", "p99_ms", "app_ms_per_req", "db_ms_per_req")


# --- the RLS comparison -----------------------------------------------------------------

# Two-sided 95 % Student t for n - 1 degrees of freedom (n paired slices).
_T95 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26}


def _t95(df: int) -> float:
    if df in _T95:
        return _T95[df]
    return 2.23 if df < 15 else 2.13 if df < 20 else 2.09 if df < 30 else 2.0


def _change(new: float | None, old: float | None) -> tuple[float | None, float | None]:
    if new is None or old is None:
        return None, None
    return round(new - old, 3), (round(100 * (new - old) / old, 1) if old else None)


def paired_change(rls: list[float | None], plain: list[float | None]) -> dict[str, Any]:
    """rls/no-rls - 1 for each slice pair (run back to back), in percent: mean and a
    95 % interval. Other load on the machine hits both halves of a pair alike, so the
    interval is what the comparison can resolve on this run."""
    ratios = [100 * (a / b - 1) for a, b in zip(rls, plain, strict=False) if a and b]
    if not ratios:
        return {"pairs": 0, "mean_percent": None, "low_percent": None, "high_percent": None}
    centre = mean(ratios)
    half = _t95(len(ratios) - 1) * stdev(ratios) / sqrt(len(ratios)) if len(ratios) > 1 else None
    return {
        "pairs": len(ratios),
        "mean_percent": round(centre, 1),
        "low_percent": None if half is None else round(centre - half, 1),
        "high_percent": None if half is None else round(centre + half, 1),
    }


def compare(rows: list[Row]) -> list[dict[str, Any]]:
    """RLS against no RLS for each compared scenario measured under both."""
    found = {(r.name, r.variant): r for r in rows if r.measured}
    comparisons = []
    for name in COMPARED:
        rls, plain = found.get((name, RLS)), found.get((name, NO_RLS))
        if rls is None or plain is None:
            continue
        throughput, throughput_pct = _change(rls.ok_per_s, plain.ok_per_s)
        p50, p50_pct = _change(rls.p50_ms, plain.p50_ms)
        p99, p99_pct = _change(rls.p99_ms, plain.p99_ms)
        throughput_pairs = paired_change(rls.per_slice["ok_per_s"], plain.per_slice["ok_per_s"])
        cpu_pairs = paired_change(_cpu_per_slice(rls), _cpu_per_slice(plain))
        cpu, cpu_pct = _change(_cpu(rls), _cpu(plain))
        comparisons.append(
            {
                "scenario": name,
                "rls": _figures(rls),
                "no_rls": _figures(plain),
                "throughput_change": throughput,
                "throughput_change_percent": throughput_pct,
                "p50_change_ms": p50,
                "p50_change_percent": p50_pct,
                "p99_change_ms": p99,
                "p99_change_percent": p99_pct,
                "cpu_ms_per_req_change": cpu,
                "cpu_ms_per_req_change_percent": cpu_pct,
                "paired_slices": {"throughput": throughput_pairs, "cpu_per_req": cpu_pairs},
                "verdict": {
                    "throughput": _verdict(throughput_pairs, "throughput", cost_if="negative"),
                    "cpu_per_req": _verdict(cpu_pairs, "CPU per request", cost_if="positive"),
                },
            }
        )
    return comparisons


def _verdict(pairs: dict[str, Any], what: str, cost_if: str) -> str:
    low, high = pairs["low_percent"], pairs["high_percent"]
    if low is None or high is None:
        return "too few slice pairs for an interval (--compare-seconds / --slice >= 2)"
    interval = f"95 %: {low:+.1f} to {high:+.1f} %"
    if low <= 0 <= high:
        return f"{what}: within this run's slice-to-slice noise ({interval})"
    worse = high < 0 if cost_if == "negative" else low > 0
    return (
        f"{what}: rls {'worse' if worse else 'better'} beyond this run's slice-to-slice "
        f"noise ({interval}); see the README before quoting it"
    )


def _cpu(row: Row) -> float | None:
    if row.app_ms_per_req is None or row.db_ms_per_req is None:
        return None
    return round(row.app_ms_per_req + row.db_ms_per_req, 3)


def _cpu_per_slice(row: Row) -> list[float | None]:
    apps, dbs = row.per_slice.get("app_ms_per_req", []), row.per_slice.get("db_ms_per_req", [])
    return [
        None if app is None or db is None else app + db for app, db in zip(apps, dbs, strict=True)
    ]


def _figures(row: Row) -> dict[str, Any]:
    return {
        "ok_per_s": row.ok_per_s,
        "p50_ms": row.p50_ms,
        "p99_ms": row.p99_ms,
        "app_ms_per_req": row.app_ms_per_req,
        "db_ms_per_req": row.db_ms_per_req,
    }


def _signed(value: float | None, unit: str) -> str:
    return "-" if value is None else f"{value:+,.1f}{unit}"


def print_comparison(comparisons: list[dict[str, Any]], opts: Options) -> None:
    if not comparisons:
        return
    print(
        f"\nRLS cost ({RLS} relative to {NO_RLS}; {opts.slices} slice pairs of "
        f"{opts.slice_seconds} s, order alternating):"
    )
    width = max(len(c["scenario"]) for c in comparisons)
    for c in comparisons:
        rls, plain = c["rls"], c["no_rls"]
        pad = " " * width
        print(
            f"  {c['scenario']:<{width}}  2xx/s {_signed(c['throughput_change_percent'], ' %')}"
            f" ({fmt(rls['ok_per_s'])} vs {fmt(plain['ok_per_s'])})"
            f"   p50 {_signed(c['p50_change_ms'], ' ms')}"
            f" ({_signed(c['p50_change_percent'], ' %')})"
            f"   p99 {_signed(c['p99_change_ms'], ' ms')}"
            f" ({_signed(c['p99_change_percent'], ' %')})"
        )
        print(
            f"  {pad}  CPU ms/request {_signed(c['cpu_ms_per_req_change_percent'], ' %')}: "
            f"app {fmt2(rls['app_ms_per_req'])} vs {fmt2(plain['app_ms_per_req'])}, "
            f"PostgreSQL {fmt2(rls['db_ms_per_req'])} vs {fmt2(plain['db_ms_per_req'])}"
        )
        for text in c["verdict"].values():
            print(f"  {pad}  {text}")


# --- the table --------------------------------------------------------------------------


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def fmt2(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def outcome(row: Row) -> str:
    if not row.measured:
        return f"not measured (probe: {row.probe.get('status')})"
    parts = [f"{code}:{count}" for code, count in row.statuses.items()]
    errors = {name: n for name, n in row.socket_errors.items() if n}
    parts += [f"{name}-errors:{n}" for name, n in errors.items()]
    return " ".join(parts) or "-"


def print_table(rows: list[Row]) -> None:
    header = (
        "scenario",
        "req/s",
        "2xx/s",
        "p50 ms",
        "p99 ms",
        "app CPU",
        "db CPU",
        "statuses / socket errors",
    )
    lines = [
        (
            row.label,
            fmt(row.requests_per_s),
            fmt(row.ok_per_s),
            fmt(row.p50_ms),
            fmt(row.p99_ms),
            fmt2(row.app_ms_per_req),
            fmt2(row.db_ms_per_req),
            outcome(row),
        )
        for row in rows
    ]
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]
    for cells in [header, *lines]:
        padded = (
            cell.rjust(width) if 0 < column < 7 else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(cells, widths, strict=True))
        )
        print("  ".join(padded).rstrip())
    for row in rows:
        if row.note:
            print(f"  {row.label}: {row.note}")
    print("  (app/db CPU: ms of CPU per completed request, gunicorn and PostgreSQL backends)")
    if sliced := [row for row in rows if row.slices > 1]:
        print(
            f"  ({', '.join(row.label for row in sliced)}: {sliced[0].slices} slices "
            "combined; each slice's figures are in results.json)"
        )


def print_header(
    opts: Options,
    config: dict[str, Any],
    seed: dict[str, Any],
    servers: list[Server],
    warning: str,
    extra: Sequence[str] = (),
) -> None:
    threads = f" x {config['threads']} threads" if config["worker_class"] == "gthread" else ""
    print(
        f"AskPro bench: gunicorn {config['worker_class']} x {config['workers']} workers{threads}"
        f" per server{' + Celery worker' if opts.with_worker else ''}; "
        f"wrk {opts.threads} threads, {opts.connections} connections"
    )
    print(
        f"Rows: {opts.duration} s each; list and booking {opts.slices} x {opts.slice_seconds} s "
        "per variant, alternating between the servers"
    )
    rates = ", ".join(f"{name}={THROTTLE_RATE}" for name in THROTTLE_VARS)
    print(f"Profile: DEBUG=false, LOG_LEVEL=warning, access log off; throttles {rates}")
    appointments = seed["appointments"]
    print(
        f"Data: company '{seed['company']['slug']}', {len(seed['staff'])} staff x "
        f"{slots_per_day(seed)} slots a day, {seed['customers']} customers, "
        f"{appointments['count']} appointments over {appointments['days']} days; "
        f"database {DB_NAME}, Redis {REDIS_URL}"
    )
    described = {
        RLS: f"DATABASE_URL={DB_APP}, MIGRATION_DATABASE_URL={DB_OWNER}: RLS + set_config prefix",
        NO_RLS: f"DATABASE_URL={DB_OWNER} (BYPASSRLS): no policy, no prefix",
    }
    for on in servers:
        print(f"Server '{on.variant}' on {on.base_url}: {described[on.variant]}")
    for line in extra:
        print(line)
    print()
    if warning:
        print(warning)


# --- results.json -----------------------------------------------------------------------


def _row(row: Row) -> dict[str, Any]:
    data = asdict(row)
    del data["histogram"]
    return data


def write_results(opts: Options, env: dict[str, str], results: dict[str, Any]) -> None:
    document = {
        "machine": results["machine"],
        "profile": {
            "duration_s": opts.duration,
            "compare_s": opts.slices * opts.slice_seconds,
            "observability_s": opts.observability_slices * opts.slice_seconds,
            "slice_s": opts.slice_seconds,
            "connections": opts.connections,
            "wrk_threads": opts.threads,
            "warmup_s": opts.warmup,
            "celery_worker": opts.with_worker,
            "throttles": {name: env[name] for name in THROTTLE_VARS},
            "debug": env["DEBUG"],
            "log_level": env["LOG_LEVEL"],
        },
        "servers": results["servers"],
        "db_connections_after_warmup": results["db_connections_after_warmup"],
        "data": results["data"],
        "scenarios": [_row(row) for row in results["rows"]],
        "rls_comparison": results["comparison"],
    }
    if results.get("observability"):
        document["observability"] = results["observability"]
    if results.get("tools"):
        document["tools"] = results["tools"]
    if results.get("breaker"):
        document["breaker"] = results["breaker"]
    write_document(opts, document)


def write_document(opts: Options, document: dict[str, Any]) -> None:
    opts.output.parent.mkdir(parents=True, exist_ok=True)
    opts.output.write_text(json.dumps(document, indent=2) + "\n")
    shown = opts.output.relative_to(ROOT) if opts.output.is_relative_to(ROOT) else opts.output
    print(f"\nwrote {shown}")
