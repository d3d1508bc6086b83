"""The processes `make bench` runs: PostgreSQL set-up, seed data, gunicorn and Celery.

Every long-running process is started in its own session and stopped as a group, so
nothing outlives the runner (``running``)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import devstack
from bench.config import (
    DB_NAME,
    DB_OWNER,
    LOG_DIR,
    PG_HOST,
    PG_PORT,
    REDIS_URL,
    BenchError,
    Options,
    variant_env,
)
from devstack import BIN, ROOT, http_status

# The tables a seed rewrites: vacuumed and analysed after it, so dead rows and stale
# statistics don't differ from one pass to the next (or set autovacuum off mid-run).
SEEDED_TABLES = (
    "bookings_appointment",
    "bookings_appointmenthistory",
    "bookings_customer",
    "webhooks_webhookevent",
)

# --- subprocesses -----------------------------------------------------------------------


def executable(name: str) -> str:
    """Full path of a tool: the virtualenv's first, then PATH."""
    candidate = BIN / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise BenchError(f"{name} is not installed (scripts/bench.sh installs what it can)")
    return found


def run(args: Sequence[str], env: dict[str, str] | None = None, timeout: float = 300) -> str:
    """Run a command to completion; return its stdout, or raise with its stderr."""
    try:
        result = subprocess.run(  # noqa: S603 -- fixed argv, no shell
            list(args), env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"{Path(args[0]).name} took more than {timeout:.0f} s") from None
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip()[-2000:]
        raise BenchError(f"{Path(args[0]).name} {' '.join(args[1:3])} failed:\n{tail}")
    return result.stdout


def log_tail(name: str, lines: int = 20) -> str:
    return devstack.log_tail(LOG_DIR / f"{name}.log", lines)


@contextmanager
def running(
    name: str, args: Sequence[str], env: dict[str, str]
) -> Iterator[subprocess.Popen[bytes]]:
    """A long-running process in its own session, its output in ``LOG_DIR/<name>.log``
    (written afresh); SIGTERM to its group on exit, SIGKILL after 10 s."""
    process = devstack.spawn(args, env, LOG_DIR / f"{name}.log", mode="wb")
    try:
        yield process
    finally:
        devstack.stop(process, grace=10, kill_wait=5)


# --- the database, Redis and data -------------------------------------------------------


def psql(sql: str, user: str = "postgres", database: str = "postgres") -> str:
    args = [executable("psql"), "-h", PG_HOST, "-p", PG_PORT, "-U", user, "-d", database]
    return run([*args, "-v", "ON_ERROR_STOP=1", "-qtAc", sql]).strip()


def ensure_database() -> None:
    exists = f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}'"  # noqa: S608 -- constant
    if psql(exists) != "1":
        print(f"creating database {DB_NAME} owned by {DB_OWNER}", file=sys.stderr)
        psql(f"CREATE DATABASE {DB_NAME} OWNER {DB_OWNER}")


def flush_redis() -> None:
    import redis

    redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).flushdb()


def migrate(env: dict[str, str]) -> None:
    """Migrate as the owner, grant the app role, then check every table is protected.

    ``--skip-checks``: ``migrate`` runs the database checks *before* migrating, and the
    RLS check (tenants.E005) fails on a fresh database or one migrated before RLS,
    which is exactly what this migrate fixes. ``check --database`` runs it after."""
    manage = [sys.executable, "manage.py"]
    run([*manage, "migrate", "--no-input", "--skip-checks", "-v", "0"], env)
    run([*manage, "check", "--database", "default", "--fail-level", "ERROR"], env)


def seed(env: dict[str, str]) -> dict[str, Any]:
    """Reset the bench company (``bench/setup_data.py``) and Redis; returns the seed."""
    flush_redis()
    data: dict[str, Any] = json.loads(run([sys.executable, "-m", "bench.setup_data"], env))
    psql(f"VACUUM (ANALYZE) {', '.join(SEEDED_TABLES)}", DB_OWNER, DB_NAME)
    return data


def client_roles() -> dict[str, int]:
    """Open connections to the bench database per role (ours, as postgres, left out)."""
    rows = psql(
        "SELECT usename, count(*) FROM pg_stat_activity "  # noqa: S608 -- constant
        f"WHERE datname = '{DB_NAME}' AND usename <> 'postgres' GROUP BY usename"
    )
    return {name: int(count) for name, count in (line.split("|") for line in rows.splitlines())}


# --- gunicorn and Celery ----------------------------------------------------------------


def gunicorn_args() -> list[str]:
    return [executable("gunicorn"), *devstack.GUNICORN_ARGS]


def gunicorn_config(env: dict[str, str]) -> dict[str, Any]:
    """What docker/gunicorn.conf.py resolves to under ``env`` (workers, class, threads)."""
    code = (
        "import json, runpy; c = runpy.run_path('docker/gunicorn.conf.py'); "
        "print(json.dumps({k: c[k] for k in ('workers', 'worker_class', 'threads', "
        "'max_requests', 'max_requests_jitter')}))"
    )
    config: dict[str, Any] = json.loads(run([sys.executable, "-c", code], env))
    return config


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def child_pids(pid: int) -> list[int]:
    found = subprocess.run(  # noqa: S603 -- fixed argv
        [executable("pgrep"), "-P", str(pid)], capture_output=True, text=True, check=False
    )
    return [int(child) for child in found.stdout.split()]


@dataclass(frozen=True)
class Server:
    """One gunicorn: a variant's database role on its own port."""

    variant: str
    port: int
    env: dict[str, str]
    master: int = 0  # the gunicorn master's pid, once started
    capacity: int = 1  # requests it serves at once: workers x threads
    scenario: str = ""  # a scenario's own server (observability): part of its log's name

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        """Its output's name in LOG_DIR (``<log>.log``): gunicorn-rls, gunicorn-observability-on."""
        name = f"{self.scenario} {self.variant}" if self.scenario else self.variant
        return f"gunicorn-{name.replace(' ', '-')}"


def server_for(opts: Options, env: dict[str, str], variant: str) -> Server:
    port = opts.port_of(variant)
    return Server(
        variant, port, {**variant_env(env, variant), "GUNICORN_BIND": f"127.0.0.1:{port}"}
    )


def wait_for_gunicorn(process: subprocess.Popen[bytes], server: Server, workers: int) -> None:
    """Until /health/live answers 200 and every worker has been forked."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"gunicorn exited ({process.returncode}):\n{log_tail(server.log)}")
        live = http_status(f"{server.base_url}/health/live") == 200
        if live and len(child_pids(process.pid)) >= workers:
            return
        time.sleep(0.2)
    raise BenchError(f"gunicorn did not become ready in 60 s:\n{log_tail(server.log)}")


@contextmanager
def serving(servers: list[Server], workers: int) -> Iterator[dict[str, int]]:
    """Start every server at once, wait until all are ready; stop them all on exit.
    Yields each variant's gunicorn master pid."""
    with ExitStack() as stack:
        started = [
            (server, stack.enter_context(running(server.log, gunicorn_args(), server.env)))
            for server in servers
        ]
        for server, process in started:
            wait_for_gunicorn(process, server, workers)
        yield {server.variant: process.pid for server, process in started}


def wait_for_celery(process: subprocess.Popen[bytes], env: dict[str, str], node: str) -> None:
    celery = executable("celery")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"the Celery worker exited:\n{log_tail('celery')}")
        try:
            run([celery, "-A", "askpro", "inspect", "ping", "-d", node, "-t", "2"], env, 30)
            return
        except BenchError:
            time.sleep(1)
    raise BenchError(f"the Celery worker did not answer in 60 s:\n{log_tail('celery')}")


def celery_args(node: str) -> list[str]:
    return [executable("celery"), "-A", "askpro", "worker", "-n", node, "--loglevel=WARNING"]


@contextmanager
def celery_if(opts: Options, env: dict[str, str]) -> Iterator[None]:
    if not opts.with_worker:
        yield
        return
    node = f"bench-{os.getpid()}@{socket.gethostname()}"
    with running("celery", celery_args(node), env) as process:
        wait_for_celery(process, env, node)
        yield


def fetch(request: urllib.request.Request) -> tuple[int | None, str]:
    """Send one request: (status, the start of the body), or (None, why) if no answer."""
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return int(response.status), response.read(300).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(300).decode(errors="replace")
    except OSError as exc:
        return None, str(exc)


@contextmanager
def simulator_process(module: str) -> Iterator[str]:
    """``python -m <module> simulator``: the provider simulator in its own process, as a
    provider would be. Yields the first line it prints (a URL); it stops at end of stdin."""
    process = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
        [sys.executable, "-m", module, "simulator"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None and process.stdout is not None  # noqa: PT018
    try:
        url = process.stdout.readline().strip()
        if not url.startswith("http://"):
            raise BenchError("the provider simulator didn't start")
        yield url
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
