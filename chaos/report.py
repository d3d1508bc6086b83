"""The report: ``chaos/report.md`` (or ``--output``) and a summary table on stdout."""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chaos.checks import Invariants
from chaos.config import ROOT, Options
from chaos.drills import PHASES, BackupResult, DrillResult
from chaos.logscan import Scan


def machine() -> dict[str, str]:
    model, memory = "?", "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 -- read-only
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        commit = "?"
    return {
        "cores": str(os.cpu_count()),
        "cpu": model,
        "memory": memory,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "commit": commit or "?",
    }


@dataclass
class Report:
    opts: Options
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    machine: dict[str, str] = field(default_factory=machine)
    drills: list[DrillResult] = field(default_factory=list)
    backup: BackupResult | None = None
    soak: DrillResult | None = None
    scan: Scan | None = None
    aborted: str = ""
    totals: dict[str, dict[str, int]] = field(default_factory=dict)
    latency: dict[str, str] = field(default_factory=dict)  # group -> "p50 … p99 …"
    run_dir: str = ""
    setup_s: float = 0.0

    @property
    def passed(self) -> bool:
        results: list[Any] = [*self.drills, self.backup, self.soak]
        return not self.aborted and all(r.passed for r in results if r is not None)


def _s(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def _counts(counts: dict[str, int]) -> str:
    return " ".join(f"`{k}`x{n}" for k, n in counts.items()) or "—"


def _accepted(inv: Invariants | None) -> str:
    if inv is None:
        return "—"
    mark = "=" if inv.accepted_equals_processed else "≠"
    return f"{inv.acknowledged} {mark} {inv.processed}"


def summary_rows(report: Report) -> list[list[str]]:
    rows = []
    for result in [*report.drills, *([report.soak] if report.soak else [])]:
        inv = result.invariants
        held = result.healed - result.injected if result.name != "soak" else 0.0
        during = result.statuses.get("during") or result.statuses.get("soak") or {}
        rows.append(
            [
                result.name,
                f"{held:.0f}" if result.name != "soak" else f"{result.ended - result.started:.0f}",
                _s(result.recovery_s) if result.name != "soak" else "—",
                _s(result.first_webhook_ok_s),
                _s(result.first_booking_ok_s),
                _s(result.drained_s),
                _five(during),
                _accepted(inv),
                str(inv.duplicate_effects) if inv else "—",
                str(inv.double_bookings) if inv else "—",
                "PASS" if result.passed else "FAIL",
            ]
        )
    if report.backup:
        b = report.backup
        rows.append(
            [
                "backup",
                f"{b.dump_s + b.restore_s:.0f}",
                "—",
                "—",
                "—",
                "—",
                "—",
                f"{b.tables} tables, {b.rows} rows, {len(b.mismatches)} differ",
                "—",
                "—",
                "PASS" if b.passed else "FAIL",
            ]
        )
    return rows


SUMMARY_HEADER = [
    "step",
    "fault s",
    "recovery s",
    "1st webhook ok s",
    "1st booking ok s",
    "drained s",
    "5xx/no answer in fault",
    "acked = processed",
    "dup effects",
    "double bookings",
    "result",
]


def _five(statuses: dict[str, dict[str, int]]) -> str:
    parts = []
    for name, counts in statuses.items():
        five = sum(n for k, n in counts.items() if k.startswith("5"))
        none = sum(n for k, n in counts.items() if k.startswith("0"))
        if five or none:
            parts.append(f"{name[0]}:{five}/{none}")
    return " ".join(parts) or "0"


def text_table(report: Report) -> str:
    rows = [SUMMARY_HEADER, *summary_rows(report)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(SUMMARY_HEADER))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    verdict = "ALL PASSED" if report.passed else "FAILED"
    return "\n".join([*lines, "", f"chaos: {verdict}"])


def markdown(report: Report) -> str:
    o, m = report.opts, report.machine
    out = [
        "# Chaos drills",
        "",
        f"Run {report.started:%Y-%m-%d %H:%M} UTC · commit `{m['commit']}` · "
        f"{m['cores']} cores ({m['cpu']}), {m['memory']} RAM, Linux {m['kernel']}, "
        f"Python {m['python']}.",
        "",
        f"`python -m chaos.run --drill-seconds {o.drill_seconds} --soak-seconds "
        f"{o.soak_seconds}` · steps: {', '.join(o.only)} · traffic: {o.webhook_rate:g} "
        f"webhooks/s (+~10 % re-deliveries), {o.booking_rate:g} booking POSTs/s (3 racing "
        f"per window) · private PostgreSQL 15 and Redis on loopback, gunicorn 2 sync "
        f"workers, 2 Celery workers (prefork x2), beat; `WEBHOOK_SWEEP_SECONDS=2`, "
        f"`WEBHOOK_STUCK_SECONDS=5`, `WEBHOOK_LEASE_SECONDS=15` · set-up "
        f"{report.setup_s:.0f} s.",
        "",
        f"**Verdict: {'every step passed' if report.passed else 'FAILED'}.**",
        "",
    ]
    if report.aborted:
        out += ["## Aborted", "", "```", report.aborted.strip()[-3000:], "```", ""]
    out += ["## Summary", "", _md_table(SUMMARY_HEADER, summary_rows(report)), ""]
    out += [
        "Recovery = from healing until the first webhook and the first booking succeed "
        "again, no acknowledged event older than 3 s is unfinished, and the drill's own "
        "condition holds (simulator: both breakers closed). *acked = processed*: distinct "
        "event ids the traffic saw acknowledged (202, or 200 duplicate) vs those stored "
        "exactly once and `processed`, checked cumulatively after each step. "
        "*5xx/no answer in fault*: w(ebhooks)/b(ookings) 5xx / no answer, from the "
        "fault until recovery.",
        "",
    ]
    for result in report.drills:
        out += _drill_section(result)
    if report.backup:
        out += _backup_section(report.backup)
    if report.soak:
        out += _soak_section(report.soak, report.scan)
    if report.scan:
        out += _scan_section(report.scan)
    if report.totals:
        out += ["## Traffic, whole run", ""]
        out += [
            f"- {name}: {_counts(counts)}; latency {report.latency.get(name, '?')}"
            for name, counts in report.totals.items()
        ]
        out += [""]
    return "\n".join(out)


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _invariants(inv: Invariants | None) -> list[str]:
    if inv is None:
        return ["- invariants: not checked", ""]
    return [
        f"- events: {inv.acknowledged} acknowledged ({inv.accepted} answered 202), "
        f"{inv.stored} stored, {inv.processed} processed; lost {len(inv.lost)}, "
        f"unfinished {inv.unfinished or 0}; waited {_s(inv.waited_s)} s for the last "
        f"to finish; stored though the client saw no acknowledgement (its request timed out "
        f"or failed, ≥ 12 s before the check): {inv.stored_without_ack}; whole inbox {inv.inbox}",
        f"- effects: {inv.payments_expected} payments expected, {inv.payments_missing} "
        f"missing, {inv.payments_duplicate} duplicated; deposit history twice: "
        f"{inv.deposit_history_duplicates}; events answered 202 twice: "
        f"{inv.double_accepted}; inbox rows twice: {inv.duplicate_rows}",
        f"- bookings: {inv.bookings_won} answered 201, {inv.appointments} appointments "
        f"stored ({inv.booked_without_201} of them, ≥ 12 s before the check, without a "
        f"201 the client saw); appointments per "
        f"Idempotency-Key > 1: {inv.booking_key_duplicates}; replays answered with another "
        f"appointment: {inv.replay_mismatches}; SMS sent {inv.sms_sent}, repeated "
        f"{inv.sms_duplicates}; deposit due with no Checkout Session made or queued: "
        f"{inv.deposits_stranded}",
        f"- double bookings (overlapping active appointments of one staff member): "
        f"{inv.double_bookings}; constraint `{inv.constraint or 'MISSING'}`; an "
        f"overlapping insert got: {inv.constraint_proof}",
        "",
    ]


def _drill_section(r: DrillResult) -> list[str]:
    out = [
        f"## Drill: {r.name} — {'PASS' if r.passed else 'FAIL'}",
        "",
        f"Fault: {r.fault}. Held {r.healed - r.injected:.1f} s. Recovery "
        f"{_s(r.recovery_s)} s after healing (first webhook 2xx {_s(r.first_webhook_ok_s)} s, "
        f"first booking 201 {_s(r.first_booking_ok_s)} s, backlog drained "
        f"{_s(r.drained_s)} s).",
        "",
    ]
    if r.extra:
        out += [f"- {k}: {_extra(v)}" for k, v in r.extra.items() if not k.startswith("breakers_d")]
        out += [""]
    rows = []
    for phase in PHASES:
        start, end = r.phase_bounds()[phase]
        statuses = r.statuses.get(phase, {})
        seconds = max(0.0, end - start)
        rate = "/".join(
            f"{sum(statuses.get(g, {}).values()) / seconds:.1f}" if seconds else "—"
            for g in ("webhooks", "bookings")
        )
        rows.append(
            [
                phase,
                f"{seconds:.0f}",
                rate,
                _counts(statuses.get("webhooks", {})),
                _counts(statuses.get("bookings", {})),
                _counts(r.health.get(phase, {})),
            ]
        )
    header = ["phase", "s", "answers/s (w/b)", "webhooks", "bookings", "/health"]
    out += [_md_table(header, rows), ""]
    out += _invariants(r.invariants)
    if r.problems:
        out += ["Problems:", ""] + [f"- {p}" for p in r.problems] + [""]
    return out


def _extra(value: Any) -> str:
    if isinstance(value, dict) and "breakers" in value:
        rows = value.get("breakers") or []
        return "; ".join(
            f"{b.get('name')} {b.get('state')} (window {b.get('window')})" for b in rows
        )
    return str(value)


def _backup_section(b: BackupResult) -> list[str]:
    out = [
        f"## Backup and restore — {'PASS' if b.passed else 'FAIL'}",
        "",
        f"`pg_dump -Fc` as askpro_owner from an exported snapshot, while traffic ran "
        f"({b.dump_bytes / 1024:.0f} KiB, {b.dump_s:.1f} s); `createdb askpro_chaos_restore`; "
        f"`pg_restore --exit-on-error --single-transaction` ({b.restore_s:.1f} s). Row counts "
        f"of {b.tables} tables ({b.rows} rows) compared with the source's in the same "
        f"snapshot: {len(b.mismatches)} differ. The restore as the app role "
        f"(`check --database default`, `migrate --check`): {b.app_check}.",
        "",
        "<details><summary>counts (source = restored)</summary>",
        "",
    ]
    out += [
        f"- {table}: {src}" + ("" if src == dst else f" ≠ {dst}")
        for table, (src, dst) in b.counts.items()
    ]
    out += ["", "</details>", ""]
    if b.problems:
        out += ["Problems:", ""] + [f"- {p}" for p in b.problems] + [""]
    return out


def _soak_section(r: DrillResult, scan: Scan | None) -> list[str]:
    statuses = r.statuses.get("soak", {})
    unexpected = scan.unexpected.get("soak", {}) if scan else {}
    out = [
        f"## Soak — {'PASS' if r.passed else 'FAIL'}",
        "",
        f"{r.ended - r.started:.0f} s of steady traffic. Webhooks: "
        f"{_counts(statuses.get('webhooks', {}))}. Bookings: "
        f"{_counts(statuses.get('bookings', {}))}. /health: {_counts(r.health.get('soak', {}))}. "
        f"Largest backlog (unfinished events older than 3 s): {r.extra.get('max_backlog')}. "
        f"Unexpected error lines in the logs: {sum(unexpected.values())}.",
        "",
    ]
    out += _invariants(r.invariants)
    if r.problems:
        out += ["Problems:", ""] + [f"- {p}" for p in r.problems] + [""]
    return out


def _scan_section(scan: Scan) -> list[str]:
    out = [
        "## Log scan",
        "",
        f"{scan.lines} lines in every process's log (gunicorn, both/all Celery workers, "
        f"beat, the simulator, Redis, PostgreSQL); {scan.errors} at error level or above.",
        "",
        "Expected — inside a drill's fault window (injection to recovery + 10 s):",
        "",
    ]
    for window, sigs in scan.expected.items():
        out += [f"- **{window}**"] + [f"  - {n}x {sig}" for sig, n in sigs.items()]
    if not scan.expected:
        out += ["- none"]
    out += ["", "By design (PostgreSQL refusing what the app maps to 409 or retries):", ""]
    out += [f"- {n}x {sig}" for sig, n in scan.by_design.items()] or ["- none"]
    out += ["", "Unexpected:", ""]
    if not scan.unexpected:
        out += ["- none"]
    for step, sigs in scan.unexpected.items():
        out += [f"- **{step}**"]
        for sig, n in sigs.items():
            example = scan.examples.get(f"{step}|{sig}", "")[:600].replace("`", "'")
            out += [f"  - {n}x {sig}", f"    `{example}`"]
    return [*out, ""]
