"""A live stack for tests: gunicorn, Celery workers and a private Redis, as processes.

They talk to the test database (so tests using them need ``transaction=True``) as the
app role, like production. Everything started is stopped, process group and all.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

import devstack
from devstack import BIN, ROOT, PrivateRedis, free_port, wait_until

__all__ = ["BIN", "ROOT", "LiveStack", "PrivateRedis", "free_port", "wait_until"]

GRACE = 20  # seconds a process gets after SIGTERM before SIGKILL


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    """A private Redis for the test (the live and browser conftests expose this fixture)."""
    redis = PrivateRedis()
    redis.start()
    yield redis
    redis.stop()


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
            **devstack.LOOPBACK_ENV,
            "SECRET_KEY": settings.SECRET_KEY,  # the derived field key must match ours
            "DATABASE_URL": self.database_url or devstack.database_url(devstack.DB_APP, database),
            "MIGRATION_DATABASE_URL": devstack.database_url(devstack.DB_OWNER, database),
            "REDIS_URL": self.redis_url,
            "CELERY_BROKER_URL": self.redis_url,
            "LOG_LEVEL": "warning",
            "WEBHOOK_THROTTLE": "1000000/min",
            "WEBHOOK_LEASE_SECONDS": "3",
            "WEBHOOK_STUCK_SECONDS": "2",
            "WEBHOOK_SWEEP_SECONDS": "1",
            "GUNICORN_BIND": f"127.0.0.1:{self.port}",
            "GUNICORN_WORKERS": "2",
        }
        return {**env, **self.extra_env}

    def start_web(self) -> None:
        gunicorn = [BIN / "gunicorn", *devstack.GUNICORN_ARGS]
        self.web = devstack.spawn(gunicorn, self.env(), self.logs / "gunicorn.log")
        wait_until(self._web_answers, 60, f"gunicorn (log: {self.logs})")

    def _web_answers(self) -> bool:
        return devstack.http_status(f"{self.base_url}/health/live", timeout=1) == 200

    def start_worker(self, concurrency: int = 2) -> subprocess.Popen[bytes]:
        name = f"live{len(self.workers)}-{self.port}@%h"
        worker = devstack.spawn(
            [
                BIN / "celery",
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
        beat = devstack.spawn(
            [
                BIN / "celery",
                "-A",
                "askpro",
                "beat",
                "--loglevel",
                "WARNING",
                "-s",
                self.logs / "beat-schedule",
            ],
            self.env(),
            self.logs / "beat.log",
        )
        self.workers.append(beat)

    def kill_worker(self, worker: subprocess.Popen[bytes]) -> None:
        """SIGKILL the worker and its children, mid-task: no chance to clean up."""
        devstack.stop(worker, signal.SIGKILL, GRACE)

    def stop(self) -> None:
        for worker in self.workers:
            devstack.stop(worker, grace=GRACE)
        devstack.stop(self.web, grace=GRACE)
        from django.db import connections

        connections.close_all()
