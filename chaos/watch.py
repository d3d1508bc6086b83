"""What the health endpoints and the breaker gauge say (every 2 s), and the inbox's
backlog as the database has it (every second, read as the owner, so row-level security
doesn't hide rows). Two threads, so a database that hangs doesn't stop the HTTP view."""

from __future__ import annotations

import contextlib
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg

BREAKER = re.compile(r'^askpro_breaker_state\{breaker="(\w+)"\}\s+([0-9.]+)', re.MULTILINE)
BREAKER_STATES = {0: "closed", 1: "half-open", 2: "open"}
UNFINISHED = "('received', 'processing', 'failed')"
BACKLOG_SQL = f"""
    SELECT
      count(*) FILTER (WHERE status IN {UNFINISHED}
                       AND received_at < now() - interval '3 seconds'),
      count(*) FILTER (WHERE status IN {UNFINISHED}),
      count(*) FILTER (WHERE status = 'dead'),
      count(*),
      (SELECT count(*) FROM bookings_appointment
        WHERE calendar_sync = 'pending' AND status IN ('pending', 'confirmed'))
    FROM webhooks_webhookevent
"""  # noqa: S608 -- constants only


@dataclass(frozen=True)
class HealthSample:
    t: float
    health_code: int  # /health; 0 = no answer
    health: str  # healthy | degraded | unhealthy | "" when no answer
    components: dict[str, str]  # component -> ok | degraded | down
    ready_code: int  # /health/ready
    breakers: dict[str, str]  # from /metrics: closed | half-open | open


@dataclass(frozen=True)
class DbSample:
    t: float
    ok: bool
    backlog: int = -1  # unfinished events received more than 3 s ago
    unfinished: int = -1
    dead: int = -1
    events: int = -1
    calendar_pending: int = -1  # active appointments still waiting for Cal.com


@dataclass
class Watch:
    base_url: str
    owner_dsn: str
    health: list[HealthSample] = field(default_factory=list)
    db: list[DbSample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        for target in (self._http, self._database):
            thread = threading.Thread(target=target, daemon=True, name=target.__name__)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def _http(self) -> None:
        with httpx.Client(timeout=3) as client:
            while not self._stop.wait(2.0):  # each probe costs the 2 gunicorn workers ~0.3 s
                self._probe(client)

    def _probe(self, client: httpx.Client) -> None:
        t = time.time()
        code, overall, components = 0, "", {}
        try:
            response = client.get(f"{self.base_url}/health")
            code = response.status_code
            body: Any = response.json()
            overall = str(body.get("status", ""))
            components = {
                name: str(value.get("status", ""))
                for name, value in (body.get("components") or {}).items()
            }
        except (httpx.HTTPError, ValueError, AttributeError):
            pass
        ready = 0
        with contextlib.suppress(httpx.HTTPError):
            ready = client.get(f"{self.base_url}/health/ready").status_code
        breakers: dict[str, str] = {}
        try:
            text = client.get(f"{self.base_url}/metrics").text
            breakers = {
                name: BREAKER_STATES.get(int(float(value)), value)
                for name, value in BREAKER.findall(text)
            }
        except httpx.HTTPError:
            pass
        with self.lock:
            self.health.append(HealthSample(t, code, overall, components, ready, breakers))

    def _database(self) -> None:
        connection: psycopg.Connection[Any] | None = None
        while not self._stop.wait(1.0):
            t = time.time()
            try:
                if connection is None or connection.closed:
                    connection = psycopg.connect(
                        self.owner_dsn,
                        autocommit=True,
                        connect_timeout=2,
                        options="-c statement_timeout=3000",
                    )
                row = connection.execute(BACKLOG_SQL).fetchone()
                assert row is not None
                sample = DbSample(t, True, *(int(value) for value in row))
            except psycopg.Error:
                if connection is not None:
                    connection.close()
                connection = None
                sample = DbSample(t, False)
            with self.lock:
                self.db.append(sample)
        if connection is not None:
            connection.close()

    def health_between(self, start: float, end: float) -> list[HealthSample]:
        with self.lock:
            return [s for s in self.health if start <= s.t < end]

    def db_between(self, start: float, end: float) -> list[DbSample]:
        with self.lock:
            return [s for s in self.db if start <= s.t < end]

    def latest_db(self) -> DbSample | None:
        with self.lock:
            return self.db[-1] if self.db else None

    def latest_health(self) -> HealthSample | None:
        with self.lock:
            return self.health[-1] if self.health else None
