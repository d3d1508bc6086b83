"""What a `make bench` run is: its options, the fixed profile and each variant's roles."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import devstack
from devstack import DB_APP, DB_OWNER, ROOT

LUA_DIR = ROOT / "bench" / "lua"
LOG_DIR = ROOT / ".run" / "bench"

DB_NAME = "askpro_bench"
PG_HOST, PG_PORT = "127.0.0.1", "5432"
REDIS_URL = "redis://127.0.0.1:6379/3"
THROTTLE_RATE = "1000000/min"
THROTTLE_VARS = ("API_THROTTLE_USER", "API_THROTTLE_COMPANY", "WEBHOOK_THROTTLE")
SECRET_KEY = "askpro-bench-fixed-key-not-a-secret-0123456789abcdef"  # noqa: S105

SCENARIOS = (
    "health",
    "availability",
    "list",
    "booking",
    "storm",
    "contention",
    "webhook",
    "drain",
    "observability",
    "tools",
    "breaker",
)
# In-process (bench/breaker.py): need neither the servers nor the bench database.
IN_PROCESS = ("breaker",)
# Measured under both variants; the others only under RLS (the production set-up).
COMPARED = ("list", "booking")
RLS, NO_RLS = "rls", "no rls"
VARIANTS = (RLS, NO_RLS)
# Its own two servers (bench/observability.py), both on the rls set-up, after the others.
OBSERVABILITY = "observability"


class BenchError(RuntimeError):
    """Something the harness needs is missing or broke; the message says what."""


def database_url(role: str) -> str:
    return devstack.database_url(role, DB_NAME, PG_PORT, PG_HOST)


@dataclass(frozen=True)
class Options:
    duration: int
    compare_seconds: int
    slice_seconds: int
    observability_seconds: int
    connections: int
    threads: int
    warmup: int
    port: int
    workers: int | None
    worker_class: str | None
    with_worker: bool
    scenarios: tuple[str, ...]
    variants: tuple[str, ...]
    quiet_wait: int
    output: Path

    @property
    def slices(self) -> int:
        """How many slices a compared row is measured in (at least one)."""
        return max(1, round(self.compare_seconds / self.slice_seconds))

    @property
    def observability_slices(self) -> int:
        """How many slices each observability profile is measured in."""
        return max(1, round(self.observability_seconds / self.slice_seconds))

    def port_of(self, variant: str) -> int:
        return self.port + VARIANTS.index(variant)


def parse_args(argv: Sequence[str] | None = None, description: str = "") -> Options:
    parser = argparse.ArgumentParser(prog="make bench", description=description)
    parser.add_argument(
        "--duration", type=int, default=10, help="seconds of health and availability (10)"
    )
    parser.add_argument(
        "--compare-seconds",
        type=int,
        default=20,
        help="seconds of list and of booking under each variant (20)",
    )
    parser.add_argument(
        "--observability-seconds",
        type=int,
        default=24,
        help="seconds of the webhook under each observability profile, on and off (24)",
    )
    parser.add_argument(
        "--slice",
        type=int,
        default=2,
        dest="slice_seconds",
        help="...run in slices of this many seconds, alternating the variants (2)",
    )
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up seconds a server (3)")
    parser.add_argument("--port", type=int, default=8765, help="rls server; no rls: +1 (8765)")
    parser.add_argument("--workers", type=int, help="gunicorn workers (config: 2*cores+1)")
    parser.add_argument("--worker-class", choices=("sync", "gthread"), help="(config: sync)")
    parser.add_argument("--with-worker", action="store_true", help="also run a Celery worker")
    parser.add_argument(
        "--scenario", action="append", choices=SCENARIOS, help="run only these (repeatable)"
    )
    parser.add_argument(
        "--variant",
        action="append",
        choices=("rls", "no-rls"),
        help="app role with RLS, or the owner without; repeatable (both)",
    )
    parser.add_argument(
        "--quiet-wait",
        type=int,
        default=30,
        help="wait up to this many seconds for busy CPUs to calm before starting (30)",
    )
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results.json")
    args = parser.parse_args(argv)
    positive = (
        args.duration,
        args.compare_seconds,
        args.slice_seconds,
        args.observability_seconds,
    )
    if min(*positive, args.connections, args.threads) < 1:
        parser.error("durations, --connections and --threads must be positive")
    if min(args.warmup, args.quiet_wait) < 0:
        parser.error("--warmup and --quiet-wait can't be negative")
    if args.connections < args.threads:
        parser.error("--connections must be at least --threads")
    variants = {name.replace("-", " ") for name in args.variant or VARIANTS}
    return Options(
        duration=args.duration,
        compare_seconds=args.compare_seconds,
        slice_seconds=args.slice_seconds,
        observability_seconds=args.observability_seconds,
        connections=args.connections,
        threads=args.threads,
        warmup=args.warmup,
        port=args.port,
        workers=args.workers,
        worker_class=args.worker_class,
        with_worker=args.with_worker,
        scenarios=tuple(name for name in SCENARIOS if name in (args.scenario or SCENARIOS)),
        variants=tuple(name for name in VARIANTS if name in variants),
        quiet_wait=args.quiet_wait,
        output=args.output,
    )


def bench_env(opts: Options) -> dict[str, str]:
    """The benchmark profile: the environment of every process the runner starts.

    The database variables are the RLS variant's (``variant_env`` swaps them)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GUNICORN_")}
    for name in ("CELERY_BROKER_URL", "SENTRY_DSN"):
        env.pop(name, None)
    env.update(devstack.RUNNER_ENV)
    env.update(
        REDIS_URL=REDIS_URL,
        SECRET_KEY=SECRET_KEY,
        LOG_LEVEL="warning",
        GUNICORN_LOG_LEVEL="warning",
    )
    env.update(dict.fromkeys(THROTTLE_VARS, THROTTLE_RATE))
    # GUNICORN_BIND: per server (Server.env)
    if opts.workers:
        env["GUNICORN_WORKERS"] = str(opts.workers)
    if opts.worker_class:
        env["GUNICORN_WORKER_CLASS"] = opts.worker_class
    return variant_env(env, RLS)


def variant_env(env: dict[str, str], variant: str) -> dict[str, str]:
    """``env`` with the database roles of ``variant``.

    rls: the app connects as askpro_app (no BYPASSRLS, owns nothing) and the owner is
    the migration role, so settings.TENANT_SETTINGS is on: every statement carries the
    tenant's ``set_config`` prefix and the policies filter every row.
    no rls: the app connects as the owner (BYPASSRLS) with no separate migration role,
    so TENANT_SETTINGS is off: no prefix, no policy applied. The ORM's own company
    filter is there in both."""
    env = dict(env)
    if variant == RLS:
        env["DATABASE_URL"] = database_url(DB_APP)
        env["MIGRATION_DATABASE_URL"] = database_url(DB_OWNER)
    else:
        env["DATABASE_URL"] = database_url(DB_OWNER)
        env.pop("MIGRATION_DATABASE_URL", None)
    return env


def variant_role(variant: str) -> str:
    """The role a server connects as: the owner for "no rls" only; every other server
    (rls, the observability profiles) is on the production set-up, the app role."""
    return DB_OWNER if variant == NO_RLS else DB_APP
