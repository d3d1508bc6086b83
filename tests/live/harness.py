"""A live stack for tests: gunicorn, Celery workers and a private Redis, as processes.

They talk to the test database (so tests using them need ``transaction=True``) as the
app role, like production. Everything started is stopped, process group and all.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise TimeoutError(f"gave up waiting for {what} after {timeout:.0f} s")


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603 - fixed argv of our own tools
        args,
        env=env,
        cwd=ROOT,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop(process: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM) -> None:
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, sig)
        process.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@dataclass
class PrivateRedis:
    """A throwaway redis-server on a spare port; the shared one is never touched."""

    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    workdir: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="askpro-redis-"))

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = _spawn(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.workdir,
            ],
            dict(os.environ),
            Path(self.workdir) / "redis.log",
        )
        wait_until(self.answers, 10, "the private Redis")

    def stop(self) -> None:
        _stop(self.process)
        self.process = None

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False


@dataclass
class LiveStack:
    """gunicorn and Celery workers serving the test database."""

    redis_url: str
    logs: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="askpro-live-")))
    port: int = field(default_factory=free_port)
    database_url: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    web: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        database = connection.settings_dict["NAME"]
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO"))},
            "DJANGO_SETTINGS_MODULE": "askpro.settings",
            "DEBUG": "false",
            "SECURE_SSL_REDIRECT": "false",  # plain HTTP on loopback, no TLS proxy
            "SECRET_KEY": settings.SECRET_KEY,  # the derived field key must match ours
            "DATABASE_URL": self.database_url or f"postgres://askpro_app@127.0.0.1:5432/{database}",
            "MIGRATION_DATABASE_URL": f"postgres://askpro_owner@127.0.0.1:5432/{database}",
            "REDIS_URL": self.redis_url,
            "CELERY_BROKER_URL": self.redis_url,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "LOG_LEVEL": "warning",
            "LOG_FORMAT": "json",
            "WEBHOOK_THROTTLE": "1000000/min",
            "WEBHOOK_LEASE_SECONDS": "3",
            "WEBHOOK_STUCK_SECONDS": "2",
            "WEBHOOK_SWEEP_SECONDS": "1",
            "GUNICORN_BIND": f"127.0.0.1:{self.port}",
            "GUNICORN_WORKERS": "2",
        }
        return {**env, **self.extra_env}

    def start_web(self) -> None:
        self.web = _spawn(
            [str(BIN / "gunicorn"), "-c", "docker/gunicorn.conf.py", "askpro.wsgi:application"],
            self.env(),
            self.logs / "gunicorn.log",
        )
        wait_until(self._web_answers, 60, f"gunicorn (log: {self.logs})")

    def _web_answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url}/health/live", timeout=1) as response:  # noqa: S310
                return bool(response.status == 200)
        except OSError:
            return False

    def start_worker(self, concurrency: int = 2) -> subprocess.Popen[bytes]:
        name = f"live{len(self.workers)}-{self.port}@%h"
        worker = _spawn(
            [
                str(BIN / "celery"),
                "-A",
                "askpro",
                "worker",
                "--pool",
                "prefork",
                "--concurrency",
                str(concurrency),
                "-n",
                name,
                "--without-mingle",
                "--without-gossip",
                "--loglevel",
                "WARNING",
            ],
            self.env(),
            self.logs / f"worker{len(self.workers)}.log",
        )
        self.workers.append(worker)
        time.sleep(0.5)
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited at once (log: {self.logs})")
        return worker

    def start_beat(self) -> None:
        """The periodic sweeper (every WEBHOOK_SWEEP_SECONDS), as in production."""
        beat = _spawn(
            [
                str(BIN / "celery"),
                "-A",
                "askpro",
                "beat",
                "--loglevel",
                "WARNING",
                "-s",
                str(self.logs / "beat-schedule"),
            ],
            self.env(),
            self.logs / "beat.log",
        )
        self.workers.append(beat)

    def kill_worker(self, worker: subprocess.Popen[bytes]) -> None:
        """SIGKILL the worker and its children, mid-task: no chance to clean up."""
        _stop(worker, signal.SIGKILL)

    def stop(self) -> None:
        for worker in self.workers:
            _stop(worker)
        _stop(self.web)
        from django.db import connections

        connections.close_all()
