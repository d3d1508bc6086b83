"""CPU accounting: how busy the machine is, and how much CPU our servers spend.

Throughput on a shared 2-core machine moves with whatever else runs; the CPU time a
server and its PostgreSQL backends spend per request moves much less, so the runner
reports both. Process times come from ``/proc/<pid>/sched`` (``se.sum_exec_runtime``,
microseconds) when the kernel has it, else from ``/proc/<pid>/stat`` (clock ticks).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.server import child_pids, psql

TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")
BUSY_PERCENT = 25  # above this, other work is skewing the figures


# --- the machine ------------------------------------------------------------------------


def _cpu_times() -> tuple[int, int]:
    """(idle, total) jiffies of all CPUs since boot, from /proc/stat."""
    fields = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return fields[3] + fields[4], sum(fields)  # idle + iowait


def busy_percent(seconds: float = 1.0) -> float | None:
    """How busy the CPUs were over the next ``seconds`` (other work skews every figure)."""
    try:
        idle_before, total_before = _cpu_times()
        time.sleep(seconds)
        idle_after, total_after = _cpu_times()
    except (OSError, ValueError, IndexError):
        return None
    total = total_after - total_before
    return round(100 * (1 - (idle_after - idle_before) / total), 1) if total else None


def wait_for_quiet(limit: float) -> float | None:
    """Sample the CPUs a second at a time until they are quiet or ``limit`` s have passed
    (someone's test run may be ending); return the last sample."""
    deadline = time.monotonic() + limit
    busy = busy_percent()
    while busy is not None and busy >= BUSY_PERCENT and time.monotonic() < deadline:
        busy = busy_percent()
    return busy


def busy_warning(busy: float | None, when: str = "just before the run") -> str:
    if busy is None or busy < BUSY_PERCENT:
        return ""
    return (
        f"Warning: other processes kept the CPUs {busy:.0f}% busy {when}: "
        "figures will be low and noisy.\n"
    )


# --- our processes ----------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()  # fields from the 3rd (state) on


def process_ms(pid: int) -> float | None:
    """CPU time ``pid`` has used (user + system, its own), in ms; None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/sched").read_text().splitlines():
            if line.startswith("se.sum_exec_runtime"):
                return float(line.split(":", 1)[1])
    except (OSError, ValueError):
        pass
    try:
        fields = _stat_fields(pid)
        return (int(fields[11]) + int(fields[12])) * TICK_MS
    except (OSError, ValueError, IndexError):
        return None


def reaped_ms(pid: int) -> float:
    """CPU time of ``pid``'s children that exited and were waited for, in ms."""
    try:
        fields = _stat_fields(pid)
        return (int(fields[13]) + int(fields[14])) * TICK_MS
    except (OSError, ValueError, IndexError):
        return 0.0


def backend_pids(role: str, database: str) -> list[int]:
    found = psql(
        "SELECT pid FROM pg_stat_activity "  # noqa: S608 -- constants
        f"WHERE usename = '{role}' AND datname = '{database}'"
    )
    return [int(line) for line in found.split()]


@dataclass
class Snapshot:
    """CPU ms per process of one server (gunicorn master and workers) and of its
    PostgreSQL backends (the connections of its role), at one moment."""

    app: dict[int, float] = field(default_factory=dict)
    app_reaped: float = 0.0  # exited workers, through the master
    db: dict[int, float] = field(default_factory=dict)


def snapshot(master: int, role: str, database: str) -> Snapshot:
    shot = Snapshot(app_reaped=reaped_ms(master))
    for pid in [master, *child_pids(master)]:
        if (ms := process_ms(pid)) is not None:
            shot.app[pid] = ms
    for pid in backend_pids(role, database):
        if (ms := process_ms(pid)) is not None:
            shot.db[pid] = ms
    return shot


def _spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU used between two snapshots by the processes alive at the second; a process
    that appeared in between counts whole."""
    return sum(ms - before.get(pid, 0.0) for pid, ms in after.items())


def spent(before: Snapshot, after: Snapshot) -> tuple[float, float]:
    """(app ms, db ms) used between two snapshots. A worker that exited in between is
    counted through the master's reaped-children time (minus what ``before`` already
    had of it); a backend that exited in between is lost (rare: CONN_MAX_AGE)."""
    gone = sum(ms for pid, ms in before.app.items() if pid not in after.app)
    app = _spent(before.app, after.app) + (after.app_reaped - before.app_reaped) - gone
    return round(app, 3), round(_spent(before.db, after.db), 3)
