"""The private stack a chaos run starts, breaks and stops.

PostgreSQL is a cluster of its own (``initdb`` in the run directory, run as the
``postgres`` OS user when we are root), Redis a ``redis-server`` on a spare port; the
machine's shared PostgreSQL and Redis are never touched. The app processes — the
provider simulator, gunicorn (2 workers), two Celery workers and beat — each run in
their own session, so a stop (or a SIGKILL) reaches the whole process group. Every
process writes to its own log file in ``<run dir>/logs``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

import devstack
from chaos.config import DB_NAME, DB_OWNER, PG_BIN, ChaosError, app_env
from devstack import BIN, ROOT, free_port, http_status, log_tail, spawn, stop


def roles_sql() -> str:
    """The roles exactly as ``scripts/services.sh`` creates them (its heredoc)."""
    script = ROOT / "scripts" / "services.sh"
    found = re.search(r"<<'SQL'\n(.*?)\nSQL\n", script.read_text(), re.DOTALL)
    if found is None or "askpro_app" not in found.group(1):
        raise ChaosError(f"no role SQL (a <<'SQL' heredoc creating askpro_app) in {script}")
    return found.group(1)


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    devstack.wait_until(condition, timeout, what, interval=0.2, error=ChaosError)


def run(
    args: Sequence[str | Path],
    env: dict[str, str] | None = None,
    timeout: float = 300,
    stdin: str | None = None,
) -> str:
    """Run a command to completion; its stdout, or ChaosError with its output's tail."""
    argv = [str(arg) for arg in args]
    try:
        result = subprocess.run(  # noqa: S603 -- fixed argv of our own tools, no shell
            argv,
            env=env,
            cwd=ROOT,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ChaosError(f"{' '.join(argv[:3])} took more than {timeout:.0f} s") from None
    if result.returncode != 0:
        tail = (result.stderr + result.stdout).strip()[-2000:]
        raise ChaosError(f"{' '.join(argv[:4])} failed ({result.returncode}):\n{tail}")
    return result.stdout


class PrivatePostgres:
    """A PostgreSQL 15 cluster in ``<run dir>/pg``, trust auth on 127.0.0.1:``port``."""

    def __init__(self, run_dir: Path, port: int) -> None:
        self.dir = run_dir / "pg"
        self.data = self.dir / "data"
        self.log = self.dir / "postgresql.log"
        self.port = port

    @staticmethod
    def _as_postgres(args: Sequence[str | Path]) -> list[str | Path]:
        """initdb and the server refuse root: run them as the ``postgres`` OS user."""
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *args]
        return list(args)

    def init(self) -> None:
        self.dir.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        initdb: list[str | Path] = [
            PG_BIN / "initdb",
            "-D",
            self.data,
            "-U",
            "postgres",
            "--auth=trust",
        ]
        run(self._as_postgres([*initdb, "-E", "UTF8", "--no-instructions"]), timeout=120)
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.dir}'",
            "max_connections": "100",
            "shared_buffers": "128MB",
            "log_line_prefix": "'%m [%p] %q%u@%d '",
            "log_min_messages": "warning",
        }
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n# chaos run\n")
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())

    def pg_ctl(self, *args: str, timeout: float = 90) -> str:
        command: list[str | Path] = [PG_BIN / "pg_ctl", "-D", self.data, "-l", self.log, *args]
        return run(self._as_postgres(command), timeout=timeout)

    def start(self) -> None:
        self.pg_ctl("-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self.pg_ctl("-w", "-t", "60", "-m", mode, "stop")

    def restart(self) -> None:
        self.pg_ctl("-w", "-t", "60", "-m", "fast", "restart")

    def running(self) -> bool:
        if not self.data.exists():
            return False
        try:
            self.pg_ctl("status", timeout=20)
        except ChaosError:
            return False
        return True

    def shutdown(self) -> None:
        """Whatever happened: stop the cluster (fast, then immediate, then its pid)."""
        for mode in ("fast", "immediate"):
            if not self.running():
                return
            try:
                self.stop(mode)
            except ChaosError:
                continue
        pid_file = self.data / "postmaster.pid"
        if pid_file.exists():
            with contextlib.suppress(OSError, ValueError, IndexError):
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)

    def psql(self, sql: str, user: str = "postgres", database: str = "postgres") -> str:
        args = ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", user, "-d", database]
        return run([*args, "-v", "ON_ERROR_STOP=1", "-qtAX"], stdin=sql).strip()

    def create_roles_and_database(self) -> None:
        self.psql(roles_sql())
        self.psql(f"CREATE DATABASE {DB_NAME} OWNER {DB_OWNER}")

    def url(self, role: str, database: str = DB_NAME) -> str:
        return f"postgresql://{role}@127.0.0.1:{self.port}/{database}"


class Stack:
    """Everything a run starts; ``shutdown`` stops it all, whatever state it is in."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.logs = run_dir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        (run_dir / "metrics").mkdir(exist_ok=True)
        self.pg = PrivatePostgres(run_dir, free_port())
        self.redis = devstack.PrivateRedis(
            free_port(),
            run_dir / "redis",
            self.logs / "redis.log",
            start_timeout=15,
            error=ChaosError,
        )
        self.sim_port = free_port()
        self.web_port = free_port()
        self.env = app_env(
            pg_port=self.pg.port,
            redis_port=self.redis.port,
            sim_port=self.sim_port,
            web_port=self.web_port,
            run_dir=run_dir,
        )
        self.simulator: subprocess.Popen[bytes] | None = None
        self.web: subprocess.Popen[bytes] | None = None
        self.beat: subprocess.Popen[bytes] | None = None
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self._worker_seq = 0
        self._lock = threading.RLock()
        # (time, process, exit code): app processes that exited on their own and were
        # started again by ``supervise`` — as compose's ``restart: unless-stopped`` would.
        self.restarts: list[tuple[float, str, int | None]] = []
        self._supervising = threading.Event()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def sim_url(self) -> str:
        return f"http://127.0.0.1:{self.sim_port}"

    def manage(self, *args: str, stdin: str | None = None, timeout: float = 300) -> str:
        return run([sys.executable, "manage.py", *args], self.env, timeout, stdin)

    def python_module(self, module: str, *args: str, timeout: float = 300) -> str:
        return run([sys.executable, "-m", module, *args], self.env, timeout)

    # --- the services ------------------------------------------------------------------

    def start_services(self) -> None:
        self.pg.init()
        self.pg.start()
        self.pg.create_roles_and_database()
        self.redis.start()

    def migrate(self) -> None:
        """As the owner (``MIGRATION_DATABASE_URL``), then the RLS check as in bench."""
        self.manage("migrate", "--no-input", "--skip-checks", "-v", "0", timeout=600)
        self.manage("check", "--database", "default", "--fail-level", "ERROR")

    # --- the app -----------------------------------------------------------------------

    def start_simulator(self) -> None:
        log = self.logs / "simulator.log"
        args = [sys.executable, "manage.py", "simulate_providers", "--port", str(self.sim_port)]
        self.simulator = spawn(args, self.env, log)
        wait_until(
            lambda: http_status(f"{self.sim_url}/_sim/faults") == 200,
            60,
            f"the provider simulator:\n{log_tail(log)}",
        )

    def start_web(self) -> None:
        log = self.logs / "gunicorn.log"
        self.web = spawn([BIN / "gunicorn", *devstack.GUNICORN_ARGS], self.env, log)
        process = self.web

        def ready() -> bool:
            if process.poll() is not None:
                raise ChaosError(f"gunicorn exited ({process.returncode}):\n{log_tail(log)}")
            return http_status(f"{self.base_url}/health/live") == 200

        wait_until(ready, 90, "gunicorn")

    def start_worker(self, wait: bool = True) -> str:
        """One Celery worker (prefork, 2 processes, every declared queue); its name."""
        with self._lock:
            self._worker_seq += 1
            name = f"w{self._worker_seq}"
            log = self.logs / f"celery-{name}.log"
            args: list[str | Path] = [BIN / "celery", "-A", "askpro", "worker"]
            args += ["-n", f"chaos-{name}@%h", "--pool", "prefork", "--concurrency", "2"]
            args += ["--without-mingle", "--without-gossip"]
            self.workers[name] = spawn(args, self.env, log)
        if wait:
            self.wait_for_worker(name)
        return name

    def wait_for_worker(self, name: str, timeout: float = 90) -> None:
        log = self.logs / f"celery-{name}.log"
        process = self.workers[name]

        def ready() -> bool:
            if process.poll() is not None:
                raise ChaosError(f"worker {name} exited:\n{log_tail(log)}")
            return log.exists() and " ready." in log.read_text(errors="replace")

        wait_until(ready, timeout, f"Celery worker {name}")

    def ready_at(self, name: str) -> float | None:
        """When worker ``name`` logged that it was ready (its JSON line's timestamp)."""
        log = self.logs / f"celery-{name}.log"
        if not log.exists():
            return None
        for line in log.read_text(errors="replace").splitlines():
            if " ready." in line and line.startswith("{"):
                try:
                    stamp = str(json.loads(line).get("timestamp", ""))
                    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
                except ValueError:
                    return None
        return None

    def kill_worker(self, name: str) -> int:
        """SIGKILL the worker's whole process group, mid-task; returns the main pid."""
        with self._lock:
            process = self.workers.pop(name)
        stop(process, signal.SIGKILL)
        return process.pid

    def supervise(self, interval: float = 1.0) -> None:
        """Start Celery workers and beat again when they exit on their own (the deployment's
        restart policy: compose's ``restart: unless-stopped``). Each restart is recorded in
        ``restarts``; the drills report it as a problem."""
        self._supervising.set()

        def loop() -> None:
            while self._supervising.is_set():
                time.sleep(interval)
                with self._lock:
                    if not self._supervising.is_set():
                        return
                    exited = [(n, p) for n, p in self.workers.items() if p.poll() is not None]
                    for name, process in exited:
                        del self.workers[name]
                        what = f"celery worker {name}"
                        self.restarts.append((time.time(), what, process.returncode))
                        self.start_worker(wait=False)
                    if self.beat is not None and self.beat.poll() is not None:
                        self.restarts.append((time.time(), "celery beat", self.beat.returncode))
                        self.start_beat()

        threading.Thread(target=loop, daemon=True, name="supervisor").start()

    def exit_reason(self, what: str) -> str:
        """The last critical/error event in an exited process's log (its stated cause)."""
        name = what.rsplit(" ", 1)[-1]
        log = self.logs / ("beat.log" if what == "celery beat" else f"celery-{name}.log")
        if not log.exists():
            return ""
        found: dict[str, str] = {}
        for line in log.read_text(errors="replace").splitlines():
            for level in ("critical", "error"):
                if f'"level": "{level}"' in line:
                    with contextlib.suppress(ValueError):
                        found[level] = str(json.loads(line).get("event", ""))[:300]
        return found.get("critical") or found.get("error", "")

    def stop_supervising(self) -> None:
        with self._lock:
            self._supervising.clear()

    def start_beat(self) -> None:
        log = self.logs / "beat.log"
        args: list[str | Path] = [
            BIN / "celery",
            "-A",
            "askpro",
            "beat",
            "-s",
            self.run_dir / "beat-schedule",
        ]
        self.beat = spawn([*args, "--pidfile", ""], self.env, log)
        time.sleep(1)
        if self.beat.poll() is not None:
            raise ChaosError(f"celery beat exited:\n{log_tail(log)}")

    def start_app(self) -> None:
        self.start_web()
        first = self.start_worker(wait=False)
        second = self.start_worker(wait=False)
        self.wait_for_worker(first)
        self.wait_for_worker(second)
        self.start_beat()

    def log_files(self) -> list[Path]:
        files = sorted(self.logs.glob("*.log"))
        return [*files, self.pg.log] if self.pg.log.exists() else files

    def shutdown(self) -> None:
        """Stop everything started, in dependency order; never raises."""
        self.stop_supervising()
        steps: list[tuple[str, Callable[[], None]]] = [
            ("beat", lambda: stop(self.beat)),
            *((f"worker {n}", lambda p=p: stop(p)) for n, p in list(self.workers.items())),
            ("gunicorn", lambda: stop(self.web)),
            ("simulator", lambda: stop(self.simulator)),
            ("redis", self.redis.stop),
            ("postgres", self.pg.shutdown),
        ]
        for what, step in steps:
            try:
                step()
            except Exception as exc:
                print(f"chaos: stopping {what} failed: {exc}", file=sys.stderr)
