"""What a chaos run is: its options, names and the application's environment."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import devstack
from devstack import DB_APP, DB_OWNER, ROOT

PG_BIN = Path("/usr/lib/postgresql/15/bin")

DB_NAME = "askpro_chaos"
RESTORE_DB = "askpro_chaos_restore"
COMPANY_SLUG = "chaos"
SECRET_KEY = "askpro-chaos-fixed-key-not-a-secret-0123456789abcdef"  # noqa: S105
CALCOM_KEY = "cal_chaos_simulator_key"  # the simulator takes any cal_ key
STRIPE_KEY = "sk_test_chaos_simulator_key"  # and any sk_ key

DRILLS = ("redis", "worker", "postgres", "simulator")
STEPS = (*DRILLS, "backup", "soak")


class ChaosError(RuntimeError):
    """The harness itself failed (a process didn't start, a tool is missing)."""


@dataclass(frozen=True)
class Options:
    soak_seconds: int
    drill_seconds: int
    baseline_seconds: int
    recover_timeout: int
    webhook_rate: float
    booking_rate: float
    only: tuple[str, ...]
    keep: bool
    supervise: bool
    output: Path


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="make chaos",
        description="Fault drills on a private stack under steady traffic; writes a report.",
    )
    parser.add_argument("--soak-seconds", type=int, default=600, help="soak length (600)")
    parser.add_argument(
        "--drill-seconds", type=int, default=12, help="how long each fault is held (12)"
    )
    parser.add_argument(
        "--baseline-seconds", type=int, default=8, help="steady traffic before each fault (8)"
    )
    parser.add_argument(
        "--recover-timeout",
        type=int,
        default=240,
        help="longest wait for recovery after a fault is healed (240)",
    )
    parser.add_argument("--webhook-rate", type=float, default=20.0, help="webhooks/s (20)")
    parser.add_argument("--booking-rate", type=float, default=5.0, help="booking POSTs/s (5)")
    parser.add_argument(
        "--only",
        default="",
        help=f"comma-separated subset of {','.join(STEPS)} (default: all, in that order)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the run directory")
    parser.add_argument(
        "--no-supervise",
        action="store_true",
        help="don't start Celery workers/beat again when they exit on their own",
    )
    parser.add_argument(
        "--output", type=Path, default=ROOT / "chaos" / "report.md", help="the report (markdown)"
    )
    args = parser.parse_args(argv)
    only = tuple(name.strip() for name in args.only.split(",") if name.strip())
    unknown = sorted(set(only) - set(STEPS))
    if unknown:
        parser.error(f"--only: unknown step(s) {', '.join(unknown)}; choose from {STEPS}")
    if min(args.drill_seconds, args.recover_timeout) < 1 or args.soak_seconds < 0:
        parser.error("durations must be positive")
    if args.webhook_rate <= 0 or args.booking_rate <= 0:
        parser.error("rates must be positive")
    return Options(
        soak_seconds=args.soak_seconds,
        drill_seconds=args.drill_seconds,
        baseline_seconds=max(0, args.baseline_seconds),
        recover_timeout=args.recover_timeout,
        webhook_rate=args.webhook_rate,
        booking_rate=args.booking_rate,
        only=tuple(step for step in STEPS if step in only) if only else STEPS,
        keep=args.keep,
        supervise=not args.no_supervise,
        output=args.output,
    )


def app_env(
    *, pg_port: int, redis_port: int, sim_port: int, web_port: int, run_dir: Path
) -> dict[str, str]:
    """The production settings module on the private services, as every app process gets it."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("GUNICORN_", "DJANGO", "PYTEST", "CELERY_", "OTEL_"))
        and key not in ("SENTRY_DSN", "DATABASE_URL", "MIGRATION_DATABASE_URL", "REDIS_URL")
    }
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    sim = f"http://127.0.0.1:{sim_port}"
    env.update(devstack.RUNNER_ENV)
    env.update(
        SECRET_KEY=SECRET_KEY,
        DATABASE_URL=devstack.database_url(DB_APP, DB_NAME, pg_port),
        MIGRATION_DATABASE_URL=devstack.database_url(DB_OWNER, DB_NAME, pg_port),
        REDIS_URL=redis_url,
        CELERY_BROKER_URL=redis_url,
        PUBLIC_BASE_URL=f"http://127.0.0.1:{web_port}",
        CALCOM_API_BASE=f"{sim}/calcom/v2",
        STRIPE_API_BASE=f"{sim}/stripe",
        RETELL_API_BASE=f"{sim}/retell",
        LOG_LEVEL="info",
        # The sweeper runs often and takes over stuck and orphaned events quickly, so a
        # drill's backlog drains in seconds rather than the production minutes.
        WEBHOOK_SWEEP_SECONDS="2",
        WEBHOOK_STUCK_SECONDS="5",
        WEBHOOK_LEASE_SECONDS="15",
        # Customers' messages go to a file the checks read (chaos/sms.py); no mail server.
        SMS_BACKEND="chaos.sms.FileSmsChannel",
        CHAOS_SMS_FILE=str(run_dir / "sms.jsonl"),
        EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend",
        GUNICORN_BIND=f"127.0.0.1:{web_port}",
        GUNICORN_WORKERS="2",
        GUNICORN_LOG_LEVEL="info",
        PROMETHEUS_MULTIPROC_DIR=str(run_dir / "metrics"),
    )
    return env
