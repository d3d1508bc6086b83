"""Running wrk and reading its output into a ``Row``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bench.config import COMPARED, LUA_DIR, RLS, Options
from bench.server import executable, run


@dataclass
class Scenario:
    name: str
    method: str
    path: str
    script: str
    what: str
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Row:
    """One scenario's figures in one pass (or several passes combined), as printed and
    written to results.json."""

    name: str
    method: str
    path: str
    what: str
    variant: str = ""
    measured: bool = False
    requests: int | None = None
    seconds: float | None = None
    requests_per_s: float | None = None
    ok_per_s: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    # CPU time the server (gunicorn master + workers) and its PostgreSQL backends spent
    # during the run, in total and per request (see bench/cpu.py). cpu_requests: wrk's
    # count plus the requests the workers were still in when wrk stopped (one each).
    app_cpu_ms: float | None = None
    db_cpu_ms: float | None = None
    cpu_requests: int | None = None
    app_ms_per_req: float | None = None
    db_ms_per_req: float | None = None
    socket_errors: dict[str, int] = field(default_factory=dict)
    non_2xx_3xx: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    samples: dict[str, str] = field(default_factory=dict)
    probe: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    slices: int = 1
    # When slices are combined: each slice's figures, in the order they ran.
    per_slice: dict[str, list[float | None]] = field(default_factory=dict)
    next_index: int | None = None  # booking: where the next run starts numbering
    details: dict[str, Any] = field(default_factory=dict)  # drain: its own figures
    # Latency histogram (microseconds -> count), when wrk printed it; not written out.
    histogram: dict[int, int] = field(default_factory=dict, repr=False)

    @property
    def label(self) -> str:
        """``list (rls)``; a scenario measured only under RLS, as in production: ``health``."""
        shown = self.variant and (self.name in COMPARED or self.variant != RLS)
        return f"{self.name} ({self.variant})" if shown else self.name


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_TIME = r"([\d.]+)(us|ms|s|m|h)"


def to_ms(number: str, unit: str) -> float:
    return round(float(number) * _UNIT_MS[unit], 3)


def parse_wrk(output: str, row: Row) -> None:
    """Fill ``row`` from wrk's text (``--latency``) and the Lua done() lines."""
    if match := re.search(r"Requests/sec:\s+([\d.]+)", output):
        row.requests_per_s = round(float(match.group(1)), 1)
    for pct, attr in (("50", "p50_ms"), ("99", "p99_ms")):
        if match := re.search(rf"^\s+{pct}%\s+{_TIME}\s*$", output, re.MULTILINE):
            setattr(row, attr, to_ms(match.group(1), match.group(2)))
    if match := re.search(rf"(\d+) requests in {_TIME}", output):
        row.requests = int(match.group(1))
        row.seconds = to_ms(match.group(2), match.group(3)) / 1000
    if match := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    ):
        names = ("connect", "read", "write", "timeout")
        row.socket_errors = {n: int(v) for n, v in zip(names, match.groups(), strict=True)}
    if match := re.search(r"Non-2xx or 3xx responses: (\d+)", output):
        row.non_2xx_3xx = int(match.group(1))
    for code, count in re.findall(r"^BENCH_STATUS (\d+) (\d+)$", output, re.MULTILINE):
        row.statuses[code] = int(count)
    for code, body in re.findall(r"^BENCH_SAMPLE (\d+) (.*)$", output, re.MULTILINE):
        row.samples[code] = body
    row.statuses = dict(sorted(row.statuses.items()))
    if match := re.search(r"^BENCH_NEXT (\d+)$", output, re.MULTILINE):
        row.next_index = int(match.group(1))
    if match := re.search(r"^BENCH_HISTOGRAM (\S+)$", output, re.MULTILINE):
        pairs = (item.split(":") for item in match.group(1).split(","))
        row.histogram = {int(value): int(count) for value, count in pairs}
    if row.seconds:
        row.ok_per_s = round(ok_count(row) / row.seconds, 1)


def set_cpu(row: Row, app_ms: float, db_ms: float, requests: int) -> None:
    row.app_cpu_ms, row.db_cpu_ms, row.cpu_requests = round(app_ms, 3), round(db_ms, 3), requests
    if requests:
        row.app_ms_per_req = round(app_ms / requests, 3)
        row.db_ms_per_req = round(db_ms / requests, 3)


def ok_count(row: Row) -> int:
    return sum(n for code, n in row.statuses.items() if code.startswith("2"))


def percentile_ms(histogram: dict[int, int], percent: float) -> float | None:
    """wrk's own percentile (stats_percentile) over a histogram in microseconds."""
    total = sum(histogram.values())
    if not total:
        return None
    rank = round(percent / 100 * total + 0.5)
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return round(value / 1000, 3)
    return round(max(histogram) / 1000, 3)


def wrk(
    opts: Options,
    scenario: Scenario,
    base_url: str,
    env: dict[str, str],
    seconds: int,
    extra: dict[str, str] | None = None,
) -> str:
    args = [
        executable("wrk"),
        f"-t{opts.threads}",
        f"-c{opts.connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(LUA_DIR / scenario.script),
        f"{base_url}{scenario.path}",
    ]
    wrk_env = {**env, **scenario.env, **(extra or {}), "BENCH_THREADS": str(opts.threads)}
    return run(args, wrk_env, timeout=seconds + 60)
