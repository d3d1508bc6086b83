"""The app's processes on loopback, for the live tests, ``make bench`` and ``make chaos``.

Each long-running process starts in its own session, with its output in a log file, and
is stopped as a group (SIGTERM, then SIGKILL for whatever is left), so nothing outlives
the run. No Django here: the bench and chaos runners import this without the app.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Literal

ROOT = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent

DB_OWNER = "askpro_owner"  # owns the tables, migrates; BYPASSRLS (scripts/services.sh)
DB_APP = "askpro_app"  # what the running app connects as; bound by row-level security

# gunicorn's arguments as the image runs it (after the gunicorn executable).
GUNICORN_ARGS = ("-c", "docker/gunicorn.conf.py", "askpro.wsgi:application")

# The production settings module, served over plain HTTP on loopback.
LOOPBACK_ENV: Mapping[str, str] = {
    "DJANGO_SETTINGS_MODULE": "askpro.settings",
    "DEBUG": "false",
    "SECURE_SSL_REDIRECT": "false",  # plain HTTP on loopback, no TLS proxy
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "LOG_FORMAT": "json",
}
# ...and what the bench and chaos runners add: no tracing, quick gunicorn stops, no
# buffered output in the logs.
RUNNER_ENV: Mapping[str, str] = {
    **LOOPBACK_ENV,
    "OTEL_ENABLED": "false",
    "GUNICORN_GRACEFUL_TIMEOUT": "5",
    "PYTHONUNBUFFERED": "1",
}


def database_url(role: str, database: str, port: int | str = 5432, host: str = "127.0.0.1") -> str:
    return f"postgres://{role}@{host}:{port}/{database}"


def free_port() -> int:
    """A port nothing listens on now (the OS's choice) on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    condition: Callable[[], bool],
    timeout: float,
    what: str,
    *,
    interval: float = 0.1,
    error: type[Exception] = TimeoutError,
) -> None:
    """Poll ``condition`` until it holds; ``error`` naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise error(f"gave up waiting for {what} after {timeout:.0f} s")


def spawn(
    args: Sequence[str | Path],
    env: Mapping[str, str],
    log: Path,
    *,
    mode: Literal["ab", "wb"] = "ab",
) -> subprocess.Popen[bytes]:
    """A long-running process in its own session (its children stop with it), its output
    appended to ``log`` (or written afresh: ``mode="wb"``), no stdin."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open(mode) as out:
        return subprocess.Popen(  # noqa: S603 -- fixed argv of our own tools, no shell
            [str(arg) for arg in args],
            env=dict(env),
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def stop(
    process: subprocess.Popen[bytes] | None,
    sig: int = signal.SIGTERM,
    grace: float = 15,
    kill_wait: float = 10,
) -> None:
    """Signal the process group we started; SIGKILL whatever is left after ``grace`` s
    (and wait ``kill_wait`` s more). Gone already: nothing to do."""
    if process is None or process.poll() is not None:
        return
    for signum, wait in ((sig, grace), (signal.SIGKILL, kill_wait)):
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def http_status(url: str, timeout: float = 2) -> int | None:
    """The status a GET answers with, or None if nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 -- loopback
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def log_tail(path: Path, lines: int = 30) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class PrivateRedis:
    """A throwaway ``redis-server`` on a spare loopback port, no persistence (as
    production's cache and broker would lose their contents in a crash); the shared one is
    never touched. By default on a free port, in a temporary directory of its own."""

    def __init__(
        self,
        port: int | None = None,
        directory: Path | None = None,
        log: Path | None = None,
        *,
        start_timeout: float = 10,
        error: type[Exception] = TimeoutError,
    ) -> None:
        self.port = free_port() if port is None else port
        if directory is None:
            directory = Path(tempfile.mkdtemp(prefix="askpro-redis-"))
        directory.mkdir(parents=True, exist_ok=True)
        self.dir = directory
        self.log = directory / "redis.log" if log is None else log
        self.start_timeout = start_timeout
        self.error = error
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--appendonly", "no", "--dir", str(self.dir)]
        self.process = spawn(args, os.environ, self.log)
        wait_until(self.answers, self.start_timeout, "the private Redis", error=self.error)

    def stop(self) -> None:
        stop(self.process)
        self.process = None

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False
