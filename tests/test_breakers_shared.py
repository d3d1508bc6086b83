"""Acceptance: two OS processes share one breaker through Redis, and restarts keep it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from integrations.breakers import BreakerPolicy

ROOT = Path(__file__).resolve().parent.parent
POLICY = BreakerPolicy(min_calls=4, open_seconds=1.0, half_open_successes=2, probe_lease_seconds=5)


class Worker:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
            [
                sys.executable,
                "-m",
                "tests.processes.breaker_worker",
                str(settings.REDIS_URL),
                json.dumps(asdict(POLICY)),
            ],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def wait_ready(self) -> Worker:
        assert "ready" in self._read()
        return self

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, "breaker worker died"
        return json.loads(line)

    def send(self, **cmd: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()

    def ask(self, **cmd: Any) -> dict[str, Any]:
        self.send(**cmd)
        return self._read()

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(5)


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    started: list[Worker] = []

    def start() -> list[Worker]:
        pair = [w.wait_ready() for w in (Worker(), Worker())]
        started.extend(pair)
        return pair

    yield start
    for worker in started:
        worker.stop()


def test_two_processes_share_one_breaker_and_it_survives_their_restart(workers: Any) -> None:
    a, b = workers()
    assert b.ask(op="call", outcome="success")["decision"] == "allow"

    # Failures in A open it for B.
    assert a.ask(op="fail", n=4)["transitions"] == ["closed->open"]
    assert b.ask(op="state")["state"] == "open"
    assert b.ask(op="call", outcome="success")["decision"] == "reject"

    # Restart both: the state is in Redis, not in them.
    a.stop()
    b.stop()
    a, b = workers()
    assert a.ask(op="state")["state"] == "open"

    # When the open period ends, 20 concurrent callers across both send exactly one probe.
    time.sleep(POLICY.open_seconds + 0.1)
    at = time.time() + 0.3
    a.send(op="burst", threads=10, at=at, hold=0.3)
    b.send(op="burst", threads=10, at=at, hold=0.3)
    decisions = Counter(a._read()["decisions"] + b._read()["decisions"])
    assert decisions == Counter({"probe": 1, "reject": 19})

    # Good probes close it (two are needed by this policy) for both processes.
    assert b.ask(op="state")["state"] == "half_open"
    assert b.ask(op="call", outcome="success")["decision"] == "probe"
    assert a.ask(op="state")["state"] == "closed"
    assert a.ask(op="call", outcome="success")["decision"] == "allow"
    assert b.ask(op="call", outcome="success")["decision"] == "allow"
