"""`make bench`: serve AskPro with gunicorn on PostgreSQL and Redis, load it with wrk.

Steps: create the ``askpro_bench`` database if missing, flush Redis db 3, migrate, seed
the ``bench`` company (``bench/setup_data.py``), start gunicorn (and, with
``--with-worker``, a Celery worker), warm up, run each scenario with wrk over loopback,
print a table and write ``bench/results.json``. Whatever happens, the processes it
started are stopped before it exits. See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as wall_time
from importlib import metadata
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
LUA_DIR = ROOT / "bench" / "lua"
LOG_DIR = ROOT / ".run" / "bench"
BIN = Path(sys.executable).parent

DB_NAME = "askpro_bench"
DB_OWNER = "askpro_owner"
PG_HOST, PG_PORT = "127.0.0.1", "5432"
REDIS_URL = "redis://127.0.0.1:6379/3"
THROTTLE_RATE = "1000000/min"
THROTTLE_VARS = ("API_THROTTLE_USER", "API_THROTTLE_COMPANY", "WEBHOOK_THROTTLE")
SECRET_KEY = "askpro-bench-fixed-key-not-a-secret-0123456789abcdef"  # noqa: S105
SCENARIOS = ("health", "availability", "booking")
AVAILABILITY_DAYS = 30
BOOKING_DAYS = 360


class BenchError(RuntimeError):
    """Something the harness needs is missing or broke; the message says what."""


# --- options and environment ------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    duration: int
    connections: int
    threads: int
    warmup: int
    port: int
    workers: int | None
    worker_class: str | None
    with_worker: bool
    scenarios: tuple[str, ...]
    output: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per scenario (10)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up seconds (3)")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--workers", type=int, help="gunicorn workers (config: 2*cores+1)")
    parser.add_argument("--worker-class", choices=("sync", "gthread"), help="(config: sync)")
    parser.add_argument("--with-worker", action="store_true", help="also run a Celery worker")
    parser.add_argument(
        "--scenario", action="append", choices=SCENARIOS, help="run only these (repeatable)"
    )
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results.json")
    args = parser.parse_args(argv)
    if min(args.duration, args.connections, args.threads) < 1 or args.warmup < 0:
        parser.error("--duration, --connections and --threads must be positive")
    if args.connections < args.threads:
        parser.error("--connections must be at least --threads")
    return Options(
        duration=args.duration,
        connections=args.connections,
        threads=args.threads,
        warmup=args.warmup,
        port=args.port,
        workers=args.workers,
        worker_class=args.worker_class,
        with_worker=args.with_worker,
        scenarios=tuple(args.scenario or SCENARIOS),
        output=args.output,
    )


def bench_env(opts: Options) -> dict[str, str]:
    """The benchmark profile: the environment of every process the runner starts."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GUNICORN_")}
    for name in ("MIGRATION_DATABASE_URL", "CELERY_BROKER_URL", "SENTRY_DSN"):
        env.pop(name, None)
    env.update(
        DJANGO_SETTINGS_MODULE="askpro.settings",
        DATABASE_URL=f"postgres://{DB_OWNER}@{PG_HOST}:{PG_PORT}/{DB_NAME}",
        REDIS_URL=REDIS_URL,
        DEBUG="false",
        SECRET_KEY=SECRET_KEY,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        LOG_LEVEL="warning",
        LOG_FORMAT="json",
        OTEL_ENABLED="false",
        GUNICORN_BIND=f"127.0.0.1:{opts.port}",
        GUNICORN_LOG_LEVEL="warning",
        GUNICORN_GRACEFUL_TIMEOUT="5",
        PYTHONUNBUFFERED="1",
    )
    env.update(dict.fromkeys(THROTTLE_VARS, THROTTLE_RATE))
    if opts.workers:
        env["GUNICORN_WORKERS"] = str(opts.workers)
    if opts.worker_class:
        env["GUNICORN_WORKER_CLASS"] = opts.worker_class
    return env


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


def spawn(name: str, args: Sequence[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start a long-running process in its own session (so its children stop with it)."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    with (LOG_DIR / f"{name}.log").open("wb") as log:
        return subprocess.Popen(  # noqa: S603 -- fixed argv, no shell
            list(args),
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(process: subprocess.Popen[bytes], grace: float = 10) -> None:
    """SIGTERM the process group we started, then SIGKILL whatever is left."""
    if process.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def log_tail(name: str, lines: int = 20) -> str:
    path = LOG_DIR / f"{name}.log"
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def running(
    name: str, args: Sequence[str], env: dict[str, str]
) -> Iterator[subprocess.Popen[bytes]]:
    process = spawn(name, args, env)
    try:
        yield process
    finally:
        stop(process)


# --- preparing the database, Redis and data --------------------------------------------


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


def prepare(env: dict[str, str]) -> dict[str, Any]:
    """Database, Redis db, migrations, seed data; returns the seed (with the token)."""
    ensure_database()
    flush_redis()
    run([sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"], env)
    seed: dict[str, Any] = json.loads(run([sys.executable, "-m", "bench.setup_data"], env))
    return seed


# --- gunicorn and Celery ----------------------------------------------------------------


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


def http_status(url: str, timeout: float = 2) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 -- loopback
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def child_count(pid: int) -> int:
    found = subprocess.run(  # noqa: S603 -- fixed argv
        [executable("pgrep"), "-P", str(pid)], capture_output=True, text=True, check=False
    )
    return len(found.stdout.split())


def wait_for_gunicorn(process: subprocess.Popen[bytes], opts: Options, workers: int) -> None:
    """Until /health/live answers 200 and every worker has been forked."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"gunicorn exited ({process.returncode}):\n{log_tail('gunicorn')}")
        live = http_status(f"{opts.base_url}/health/live") == 200
        if live and child_count(process.pid) >= workers:
            return
        time.sleep(0.2)
    raise BenchError(f"gunicorn did not become ready in 60 s:\n{log_tail('gunicorn')}")


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


# --- wrk --------------------------------------------------------------------------------


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
    """One scenario's figures, as printed and written to results.json."""

    name: str
    method: str
    path: str
    what: str
    measured: bool = False
    requests: int | None = None
    seconds: float | None = None
    requests_per_s: float | None = None
    ok_per_s: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    socket_errors: dict[str, int] = field(default_factory=dict)
    non_2xx_3xx: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    samples: dict[str, str] = field(default_factory=dict)
    probe: dict[str, Any] = field(default_factory=dict)
    note: str = ""


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
    ok = sum(n for code, n in row.statuses.items() if code.startswith("2"))
    if row.seconds:
        row.ok_per_s = round(ok / row.seconds, 1)


def wrk(opts: Options, scenario: Scenario, env: dict[str, str], seconds: int) -> str:
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
        f"{opts.base_url}{scenario.path}",
    ]
    wrk_env = {**env, **scenario.env, "BENCH_THREADS": str(opts.threads)}
    return run(args, wrk_env, timeout=seconds + 60)


# --- scenarios --------------------------------------------------------------------------


def berlin_days(seed: dict[str, Any]) -> tuple[ZoneInfo, date]:
    tz = ZoneInfo(seed["branch"]["timezone"])
    return tz, datetime.now(tz).date() + timedelta(days=1)


def offset_text(moment: datetime) -> str:
    text = moment.strftime("%z")  # +0100
    return f"{text[:3]}:{text[3:]}"


def booking_days(seed: dict[str, Any]) -> str:
    """Local midnights from tomorrow on, skipping days whose UTC offset changes (DST)."""
    tz, first = berlin_days(seed)
    days = []
    for n in range(BOOKING_DAYS):
        day = first + timedelta(days=n)
        start = datetime.combine(day, wall_time(0), tz)
        end = datetime.combine(day, wall_time(23, 59), tz)
        if start.utcoffset() != end.utcoffset():
            continue
        offset = start.utcoffset() or timedelta(0)
        days.append(f"{int(start.timestamp())}/{int(offset.total_seconds())}/{offset_text(start)}")
    return ",".join(days)


def slots_per_day(seed: dict[str, Any]) -> int:
    """30-minute slots that fit in a 00:00-23:59 shift: 47 (23:30-00:00 doesn't)."""
    minutes = seed["service"]["duration_minutes"]
    return (23 * 60 + 59 - minutes) // minutes + 1


def scenarios(seed: dict[str, Any]) -> list[Scenario]:
    _, first = berlin_days(seed)
    service = str(seed["service"]["id"])
    dates = [(first + timedelta(days=n)).isoformat() for n in range(AVAILABILITY_DAYS)]
    common = {"BENCH_TOKEN": seed["api_token"], "BENCH_SERVICE_ID": service}
    booking_env = {
        **common,
        "BENCH_STAFF": ",".join(str(pk) for pk in seed["staff"]),
        "BENCH_DAYS": booking_days(seed),
        "BENCH_SLOTS_PER_DAY": str(slots_per_day(seed)),
        "BENCH_SLOT_SECONDS": str(seed["service"]["duration_minutes"] * 60),
    }
    return [
        Scenario("health", "GET", "/health/live", "health.lua", "bare view: the ceiling"),
        Scenario(
            "availability",
            "GET",
            "/api/v1/availability/",
            "availability.lua",
            f"one day of {len(seed['staff'])} staff, days over the next {AVAILABILITY_DAYS}",
            {**common, "BENCH_DATES": ",".join(dates)},
        ),
        Scenario(
            "booking",
            "POST",
            "/api/v1/appointments/",
            "booking.lua",
            "book a distinct free (staff, slot) each request",
            booking_env,
        ),
    ]


def api_request(
    opts: Options, method: str, path: str, token: str, body: dict[str, Any] | None = None
) -> tuple[int | None, str]:
    """One request with the token; (status, first 300 characters of the body)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 -- loopback
        f"{opts.base_url}{path}",
        data=data,
        method=method,
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return int(response.status), response.read(300).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(300).decode(errors="replace")
    except OSError as exc:
        return None, str(exc)


def probe(opts: Options, scenario: Scenario, seed: dict[str, Any]) -> tuple[int | None, str]:
    """One request before the load, to tell 'not built yet' from a slow endpoint.

    The booking probe takes a slot on the last bookable day, which the load never
    reaches, so it can't collide with the scenario's own bookings."""
    token = seed["api_token"]
    if scenario.name == "availability":
        first = scenario.env["BENCH_DATES"].split(",", 1)[0]
        return api_request(
            opts, "GET", f"{scenario.path}?service={seed['service']['id']}&date={first}", token
        )
    if scenario.name == "booking":
        epoch, _, _ = scenario.env["BENCH_DAYS"].rsplit(",", 1)[-1].split("/")
        tz = ZoneInfo(seed["branch"]["timezone"])
        start = datetime.fromtimestamp(int(epoch) + 12 * 3600, tz).isoformat()
        body = {
            "service": seed["service"]["id"],
            "staff": seed["staff"][0],
            "start": start,
            "customer": {"name": "Bench Probe", "phone": "+4915199999999"},
        }
        return api_request(opts, "POST", scenario.path, token, body)
    return http_status(f"{opts.base_url}{scenario.path}"), ""


def measure(opts: Options, scenario: Scenario, seed: dict[str, Any], env: dict[str, str]) -> Row:
    row = Row(scenario.name, scenario.method, scenario.path, scenario.what)
    status, body = probe(opts, scenario, seed)
    row.probe = {"status": status, "body": body} if body else {"status": status}
    if status == 404:
        row.note = f"skipped: the probe got 404 (endpoint not built yet?) {' '.join(body.split())}"
        return row
    print(f"  {scenario.name}: {opts.duration} s ...", file=sys.stderr, flush=True)
    parse_wrk(wrk(opts, scenario, env, opts.duration), row)
    row.measured = True
    if not any(code.startswith("2") for code in row.statuses):
        row.note = "no 2xx answers: these are not the endpoint's figures"
    elif set(row.statuses) - {"200", "201"}:
        row.note = "unexpected statuses: see samples in results.json"
    return row


# --- reporting --------------------------------------------------------------------------


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


def _cpu_times() -> tuple[int, int]:
    """(idle, total) jiffies of all CPUs since boot, from /proc/stat."""
    fields = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return fields[3] + fields[4], sum(fields)  # idle + iowait


def cpu_busy_percent(seconds: float = 1.0) -> float | None:
    """How busy the CPUs were over the next ``seconds`` (other work skews every figure)."""
    try:
        idle_before, total_before = _cpu_times()
        time.sleep(seconds)
        idle_after, total_after = _cpu_times()
    except (OSError, ValueError, IndexError):
        return None
    total = total_after - total_before
    return round(100 * (1 - (idle_after - idle_before) / total), 1) if total else None


def busy_warning(busy: float | None) -> str:
    if busy is None or busy < 25:
        return ""
    return (
        f"Warning: other processes kept the CPUs {busy:.0f}% busy just before the run: "
        "figures will be low and noisy.\n"
    )


def machine_facts(server: dict[str, Any], busy: float | None) -> dict[str, Any]:
    # `wrk -v` prints its version, then its usage, and exits 1.
    version = subprocess.run(  # noqa: S603 -- fixed argv
        [executable("wrk"), "-v"], capture_output=True, text=True, check=False
    )
    wrk_version = (version.stdout or version.stderr).splitlines() or ["?"]
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_busy_before_percent": busy,
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


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def outcome(row: Row) -> str:
    if not row.measured:
        return f"not measured (probe: {row.probe.get('status')})"
    parts = [f"{code}:{count}" for code, count in row.statuses.items()]
    errors = {name: n for name, n in row.socket_errors.items() if n}
    parts += [f"{name}-errors:{n}" for name, n in errors.items()]
    return " ".join(parts) or "-"


def print_table(rows: list[Row]) -> None:
    header = ("scenario", "req/s", "2xx/s", "p50 ms", "p99 ms", "statuses / socket errors")
    lines = [
        (
            row.name,
            fmt(row.requests_per_s),
            fmt(row.ok_per_s),
            fmt(row.p50_ms),
            fmt(row.p99_ms),
            outcome(row),
        )
        for row in rows
    ]
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]
    for cells in [header, *lines]:
        padded = (
            cell.rjust(width) if 0 < column < 5 else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(cells, widths, strict=True))
        )
        print("  ".join(padded).rstrip())
    for row in rows:
        if row.note:
            print(f"  {row.name}: {row.note}")


def print_header(opts: Options, server: dict[str, Any], seed: dict[str, Any], warning: str) -> None:
    threads = f" x {server['threads']} threads" if server["worker_class"] == "gthread" else ""
    print(
        f"AskPro bench: gunicorn {server['worker_class']} x {server['workers']} workers{threads}"
        f" on {opts.base_url}{' + Celery worker' if opts.with_worker else ''}; "
        f"wrk {opts.threads} threads, {opts.connections} connections, {opts.duration} s a row"
    )
    rates = ", ".join(f"{name}={THROTTLE_RATE}" for name in THROTTLE_VARS)
    print(f"Profile: DEBUG=false, LOG_LEVEL=warning, access log off; throttles {rates}")
    print(
        f"Data: company '{seed['company']['slug']}', {len(seed['staff'])} staff x "
        f"{slots_per_day(seed)} slots a day, database {DB_NAME}, Redis {REDIS_URL}\n"
    )
    if warning:
        print(warning)


def write_results(
    opts: Options, rows: list[Row], facts: dict[str, Any], env: dict[str, str]
) -> None:
    results = {
        "machine": facts,
        "profile": {
            "duration_s": opts.duration,
            "connections": opts.connections,
            "wrk_threads": opts.threads,
            "celery_worker": opts.with_worker,
            "throttles": {name: env[name] for name in THROTTLE_VARS},
            "debug": env["DEBUG"],
            "log_level": env["LOG_LEVEL"],
        },
        "scenarios": [asdict(row) for row in rows],
    }
    opts.output.parent.mkdir(parents=True, exist_ok=True)
    opts.output.write_text(json.dumps(results, indent=2) + "\n")
    shown = opts.output.relative_to(ROOT) if opts.output.is_relative_to(ROOT) else opts.output
    print(f"\nwrote {shown}")


# --- main -------------------------------------------------------------------------------


def bench(opts: Options) -> list[Row]:
    env = bench_env(opts)
    if port_in_use(opts.port):
        raise BenchError(f"port {opts.port} is already in use; pass --port")
    print("preparing database, Redis and data ...", file=sys.stderr, flush=True)
    seed = prepare(env)
    server = gunicorn_config(env)
    busy = cpu_busy_percent()
    gunicorn = [executable("gunicorn"), "-c", "docker/gunicorn.conf.py", "askpro.wsgi:application"]
    with running("gunicorn", gunicorn, env) as process, worker_if(opts, env):
        wait_for_gunicorn(process, opts, int(server["workers"]))
        print_header(opts, server, seed, busy_warning(busy))
        rows = load(opts, seed, env)
    print_table(rows)
    write_results(opts, rows, machine_facts(server, busy), env)
    return rows


@contextmanager
def worker_if(opts: Options, env: dict[str, str]) -> Iterator[None]:
    if not opts.with_worker:
        yield
        return
    node = f"bench-{os.getpid()}@{socket.gethostname()}"
    with running("celery", celery_args(node), env) as process:
        wait_for_celery(process, env, node)
        yield


def load(opts: Options, seed: dict[str, Any], env: dict[str, str]) -> list[Row]:
    if opts.warmup:
        print(f"  warm-up: {opts.warmup} s ...", file=sys.stderr, flush=True)
        warmup = Scenario(
            "warmup", "GET", "/api/v1/me/", "me.lua", "", {"BENCH_TOKEN": seed["api_token"]}
        )
        wrk(opts, warmup, env, opts.warmup)
    wanted = [s for s in scenarios(seed) if s.name in opts.scenarios]
    return [measure(opts, scenario, seed, env) for scenario in wanted]


def _terminate(signum: int, frame: object) -> None:
    # A second Ctrl-C must not cut the clean-up short: ignore further signals.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    # Also SIGINT: a shell starts background jobs with SIGINT ignored, and Python keeps that.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _terminate)
    try:
        bench(opts)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted; servers stopped", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
