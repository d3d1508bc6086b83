"""Scan every log of the run for error lines: JSON lines at level error/critical or
carrying a traceback, plain lines at ERROR/CRITICAL (gunicorn), tracebacks, and
PostgreSQL's ERROR/FATAL/PANIC.

A line is *expected* when it falls in a drill's fault window (from injecting the fault
to recovery plus a grace period) — listed per drill and kind — or when it is one of
PostgreSQL's by-design refusals (a booking race lost on the exclusion constraint, a
unique-key race inside get_or_create, a lock timeout mapped to 409). Everything else is
*unexpected*, attributed to the step it happened in; the soak must have none.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

PLAIN = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4})\] \[\d+\] \[(\w+)\] (.*)")
POSTGRES = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \w+) \[\d+\] (?:\S+ )?(ERROR|FATAL|PANIC|LOG|WARNING"
    r"|DETAIL|STATEMENT|HINT|CONTEXT):\s+(.*)"
)
BY_DESIGN = (
    (re.compile(r"violates exclusion constraint \"appointment_no_overlap\""), "booking race lost"),
    (re.compile(r"duplicate key value violates unique constraint"), "get_or_create race"),
    (re.compile(r"canceling statement due to lock timeout"), "lock timeout (409)"),
    (re.compile(r"deadlock detected"), "deadlock between racing bookings (409 or retried)"),
)
NUMBERS = re.compile(r"\b\d+\b")


@dataclass(frozen=True)
class ErrorLine:
    file: str
    t: float | None
    signature: str
    text: str


@dataclass
class Scan:
    lines: int = 0
    errors: int = 0
    expected: dict[str, dict[str, int]] = field(default_factory=dict)  # window -> sig -> n
    by_design: dict[str, int] = field(default_factory=dict)
    unexpected: dict[str, dict[str, int]] = field(default_factory=dict)  # step -> sig -> n
    examples: dict[str, str] = field(default_factory=dict)  # "step|signature" -> first line

    def unexpected_in(self, step: str) -> int:
        return sum(self.unexpected.get(step, {}).values())


def _iso(value: str) -> float | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _pg_time(value: str) -> float | None:
    stamp, _, zone = value.rpartition(" ")
    if zone != "UTC":
        return None
    return _iso(stamp + "+00:00")


def _json_error(record: dict[str, object]) -> str | None:
    level = str(record.get("level", "")).lower()
    exception = str(record.get("exception", "") or "")
    if level not in ("error", "critical") and "Traceback" not in exception:
        return None
    event = str(record.get("event", ""))[:120]
    logger = str(record.get("logger", ""))
    last = exception.strip().splitlines()[-1][:120] if exception.strip() else ""
    return NUMBERS.sub("N", f"{level} {logger}: {event}" + (f" [{last}]" if last else ""))


def errors_in(path: Path) -> tuple[int, list[ErrorLine]]:
    found: list[ErrorLine] = []
    last_t: float | None = None
    count = 0
    with path.open(errors="replace") as lines:
        for raw in lines:
            count += 1
            line = raw.rstrip("\n")
            if line.startswith("{"):
                try:
                    record = json.loads(line)
                except ValueError:
                    record = None
                if isinstance(record, dict):
                    last_t = _iso(str(record.get("timestamp", ""))) or last_t
                    signature = _json_error(record)
                    if signature:
                        found.append(ErrorLine(path.name, last_t, signature, line[:2000]))
                    continue
            if match := POSTGRES.match(line):
                last_t = _pg_time(match.group(1)) or last_t
                if match.group(2) in ("ERROR", "FATAL", "PANIC"):
                    message = NUMBERS.sub("N", match.group(3))[:140]
                    found.append(
                        ErrorLine(path.name, last_t, f"{match.group(2)} {message}", line[:2000])
                    )
                continue
            if match := PLAIN.match(line):
                last_t = _iso(match.group(1).replace(" +", "+").replace(" ", "T", 1)) or last_t
                if match.group(2).upper() in ("ERROR", "CRITICAL"):
                    signature = f"{match.group(2)} {NUMBERS.sub('N', match.group(3))[:120]}"
                    found.append(ErrorLine(path.name, last_t, signature, line[:2000]))
                continue
            if line.startswith("Traceback (most recent call last)"):
                found.append(ErrorLine(path.name, last_t, "plain traceback", line))
    return count, found


def scan(
    files: list[Path],
    fault_windows: dict[str, tuple[float, float]],
    steps: list[tuple[str, float, float]],
) -> Scan:
    result = Scan()
    expected: dict[str, Counter[str]] = {}
    unexpected: dict[str, Counter[str]] = {}
    by_design: Counter[str] = Counter()
    for path in files:
        if not path.exists():
            continue
        count, errors = errors_in(path)
        result.lines += count
        result.errors += len(errors)
        for error in errors:
            signature = f"{error.file}: {error.signature}"
            design = (
                next((name for rx, name in BY_DESIGN if rx.search(error.text)), None)
                if error.signature.startswith(("ERROR ", "FATAL "))  # PostgreSQL's own lines
                else None
            )
            if design:
                by_design[f"{error.file}: {design}"] += 1
                continue
            window = _window(error.t, fault_windows)
            if window:
                expected.setdefault(window, Counter())[signature] += 1
                continue
            step = _step(error.t, steps)
            unexpected.setdefault(step, Counter())[signature] += 1
            result.examples.setdefault(f"{step}|{signature}", error.text)
    result.expected = {w: dict(c.most_common()) for w, c in expected.items()}
    result.unexpected = {s: dict(c.most_common()) for s, c in unexpected.items()}
    result.by_design = dict(by_design.most_common())
    return result


def _window(t: float | None, windows: dict[str, tuple[float, float]]) -> str | None:
    if t is None:
        return None
    return next((name for name, (a, b) in windows.items() if a <= t <= b), None)


def _step(t: float | None, steps: list[tuple[str, float, float]]) -> str:
    if t is None:
        return "unknown time"
    for name, start, end in steps:
        if start <= t <= end:
            return name
    return "start-up/shutdown"
