"""``python -m chaos.run [--soak-seconds N] [--drill-seconds N] [--only a,b] [--keep]``.

Start the private stack, seed it, start the traffic and the watch, run the steps, then —
whatever happened — stop the traffic and every process, scan the logs, write the report
and remove the run directory (``--keep`` leaves it, logs and all). Exit 0 when every
step passed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from chaos import drills, logscan
from chaos.config import COMPANY_SLUG, DB_OWNER, DRILLS, ChaosError, Options, parse_args
from chaos.drills import Context, DrillResult, log
from chaos.report import Report, markdown, text_table
from chaos.stack import Stack
from chaos.traffic import Sample, Traffic
from chaos.watch import Watch

DRILL_STEPS: dict[str, Callable[[Context], DrillResult]] = {
    "redis": drills.redis_drill,
    "worker": drills.worker_drill,
    "postgres": drills.postgres_drill,
    "simulator": drills.simulator_drill,
}
WARM_UP_S = 20


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def prepare(stack: Stack) -> dict[str, Any]:
    log(f"private PostgreSQL :{stack.pg.port} and Redis :{stack.redis.port} in {stack.run_dir}")
    stack.start_services()
    log("migrate as askpro_owner")
    stack.migrate()
    log(f"provider simulator :{stack.sim_port}")
    stack.start_simulator()
    seed: dict[str, Any] = json.loads(
        stack.manage("seed_demo", "--json", "--company", COMPANY_SLUG)
    )
    data: dict[str, Any] = json.loads(stack.python_module("chaos.setup_data"))
    log("gunicorn (2 workers), 2 Celery workers, beat")
    stack.start_app()
    return {"seed": seed, "data": data}


def warm_up(traffic: Traffic) -> None:
    """The traffic must work before anything is broken: 202s and 201s within the warm-up."""
    time.sleep(WARM_UP_S)
    statuses = Counter((s.kind.split("-")[0], s.status) for s in traffic.ledger.snapshot())
    if not statuses[("webhook", 202)] or not statuses[("booking", 201)]:
        raise ChaosError(f"the traffic doesn't get through before any fault: {dict(statuses)}")


def run_steps(ctx: Context, report: Report, steps: list[tuple[str, float, float]]) -> None:
    for name in ctx.opts.only:
        started = time.time()
        try:
            if name in DRILLS:
                report.drills.append(DRILL_STEPS[name](ctx))
            elif name == "backup":
                report.backup = drills.backup_drill(ctx)
                log(f"backup: {'PASS' if report.backup.passed else report.backup.problems}")
                drills.drop_restore(ctx)
            elif name == "soak":
                report.soak = drills.soak(ctx)
        except (ChaosError, OSError, ValueError, RuntimeError) as exc:
            log(f"{name}: the harness failed: {exc}")
            failed = DrillResult(name, "the step could not run")
            failed.problems.append(f"harness error: {exc}")
            failed.started = failed.injected = failed.healed = started
            failed.recovered = failed.ended = time.time()
            if name == "soak":
                report.soak = failed
            else:
                report.drills.append(failed)
        steps.append((name, started, time.time()))


def attach_scan(report: Report, stack: Stack, steps: list[tuple[str, float, float]]) -> None:
    windows = {r.name: r.fault_window() for r in report.drills if r.name in DRILLS}
    report.scan = logscan.scan(stack.log_files(), windows, steps)
    for result in report.drills:
        count = report.scan.unexpected_in(result.name)
        if count:
            result.problems.append(f"{count} unexpected error line(s) in the logs (Log scan)")
    if report.soak is not None:
        count = report.scan.unexpected_in("soak")
        if count:
            report.soak.problems.append(f"{count} unexpected error line(s) in the logs")


def latencies(samples: list[Sample]) -> dict[str, str]:
    """p50/p99/max of the answered requests per group, as the client saw them."""
    found: dict[str, list[float]] = {}
    for sample in samples:
        if sample.status:
            found.setdefault(drills.group(sample.kind), []).append(sample.ms)
    out = {}
    for name, values in found.items():
        values.sort()
        p50, p99 = values[len(values) // 2], values[min(len(values) - 1, int(len(values) * 0.99))]
        out[name] = f"p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {values[-1]:.0f} ms"
    return out


def main(argv: Sequence[str] | None = None) -> int:
    opts: Options = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    run_dir = Path(tempfile.mkdtemp(prefix="askpro-chaos-"))
    run_dir.chmod(0o755)  # the postgres OS user must reach its data directory inside
    stack = Stack(run_dir)
    report = Report(opts, run_dir=str(run_dir))
    traffic: Traffic | None = None
    watch: Watch | None = None
    steps: list[tuple[str, float, float]] = []
    try:
        started = time.time()
        prepared = prepare(stack)
        report.setup_s = time.time() - started
        seed, data = prepared["seed"], prepared["data"]
        if opts.supervise:
            stack.supervise()
        watch = Watch(stack.base_url, stack.pg.url(DB_OWNER))
        watch.start()
        traffic = Traffic(
            base_url=stack.base_url,
            token=seed["api_token"],
            webhook_path=seed["webhooks"]["stripe"]["path"],
            webhook_secret=seed["webhooks"]["stripe"]["secret"],
            company_id=int(data["company_id"]),
            staff=data["staff"],
            targets=data["targets"],
            timezone=data["timezone"],
            webhook_rate=opts.webhook_rate,
            booking_rate=opts.booking_rate,
        )
        log(f"traffic: {opts.webhook_rate:g} webhooks/s, {opts.booking_rate:g} bookings/s")
        traffic.start()
        warm_up(traffic)
        run_steps(Context(stack, traffic, watch, opts), report, steps)
    except (Exception, KeyboardInterrupt) as exc:
        report.aborted = "".join(traceback.format_exception(exc))
        log(f"aborted: {exc!r}")
    finally:
        if traffic is not None:
            traffic.stop()
            totals: dict[str, Counter[str]] = {"webhooks": Counter(), "bookings": Counter()}
            samples = traffic.ledger.snapshot()
            for sample in samples:
                totals[drills.group(sample.kind)][drills.label(sample)] += 1
            report.totals = {k: dict(sorted(v.items())) for k, v in totals.items()}
            report.latency = latencies(samples)
            with (run_dir / "samples.jsonl").open("w") as out:
                out.writelines(json.dumps(dataclasses.asdict(x)) + "\n" for x in samples)
        if watch is not None:
            watch.stop()
        log("stopping everything")
        stack.shutdown()
        try:
            attach_scan(report, stack, steps)
        except OSError as exc:
            log(f"log scan failed: {exc}")
        opts.output.parent.mkdir(parents=True, exist_ok=True)
        opts.output.write_text(markdown(report))
        if opts.keep:
            log(f"kept {run_dir} (logs in {run_dir / 'logs'})")
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
    print(text_table(report))
    print(f"report: {opts.output}")
    return 0 if report.passed else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
