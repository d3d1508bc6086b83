"""The invariants, read from the database as the owner (no row-level security in the way).

- Every event the traffic saw acknowledged (202, or 200 "duplicate") is stored exactly
  once and ends ``processed``; none answered 202 twice.
- Each processed event had its effect once: one ``Payment`` for its ``pi_`` id, at most
  one ``deposit`` history entry per appointment, no customer told the same thing twice
  (chaos/sms.py), at most one appointment per ``Idempotency-Key``, replays answered with
  the first appointment.
- No two active appointments of one staff member overlap — queried, and the exclusion
  constraint shown to exist and to refuse an overlapping insert (rolled back).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from chaos.traffic import TIMEOUT_S, Ledger

ACTIVE = ("pending", "confirmed")
DOUBLE_BOOKINGS_SQL = """
    SELECT count(*) FROM bookings_appointment a
    JOIN bookings_appointment b ON a.staff_id = b.staff_id AND a.id < b.id
    WHERE a.status IN ('pending', 'confirmed') AND b.status IN ('pending', 'confirmed')
      AND tstzrange(a.start, a.busy_until, '[)') && tstzrange(b.start, b.busy_until, '[)')
"""


# A booking of a service with a deposit gets its Stripe Checkout Session in the request,
# or a deposit.checkout outbox job that makes it later (bookings/saga.py).
STRANDED_DEPOSITS_SQL = """
    SELECT count(*) FROM bookings_appointment a
    JOIN bookings_service s ON s.id = a.service_id
    WHERE s.deposit > 0 AND a.status IN ('pending', 'confirmed')
      AND a.stripe_checkout_session_id = '' AND a.notes LIKE 'chaos:chaos-%%'
      AND a.created_at < to_timestamp(%s)
      AND NOT EXISTS (SELECT 1 FROM integrations_outboxjob j
                      WHERE j.key = 'deposit.checkout:' || a.id
                        AND j.status IN ('pending', 'running'))
"""


@dataclass
class Invariants:
    acknowledged: int = 0  # distinct event ids answered 202 or 200
    accepted: int = 0  # distinct event ids answered 202
    stored: int = 0
    processed: int = 0
    lost: list[str] = field(default_factory=list)  # acknowledged, not stored
    unfinished: dict[str, int] = field(default_factory=dict)  # acknowledged, status -> n
    double_accepted: int = 0  # ids answered 202 more than once
    duplicate_rows: int = 0  # (endpoint, dedup key) stored twice, whole inbox
    stored_without_ack: int = 0  # stored, though the client never saw a 2xx (timeouts)
    inbox: dict[str, int] = field(default_factory=dict)  # whole inbox by status
    payments_expected: int = 0
    payments_missing: int = 0
    payments_duplicate: int = 0
    deposit_history_duplicates: int = 0
    booking_key_duplicates: int = 0
    replay_mismatches: int = 0
    sms_sent: int = 0
    sms_duplicates: int = 0
    bookings_won: int = 0  # requests answered 201 (first answers)
    appointments: int = 0  # the traffic's appointments in the database
    booked_without_201: int = 0  # stored appointments whose client never got a 201
    deposits_stranded: int = 0  # deposit due, no Checkout Session made nor queued
    double_bookings: int = 0
    constraint: str = ""  # the exclusion constraint's definition, "" if missing
    constraint_proof: str = ""  # what an overlapping insert got
    waited_s: float = 0.0  # until every acknowledged event was processed

    @property
    def accepted_equals_processed(self) -> bool:
        return not self.lost and not self.unfinished and self.processed == self.acknowledged

    @property
    def duplicate_effects(self) -> int:
        return (
            self.double_accepted
            + self.duplicate_rows
            + self.payments_duplicate
            + self.deposit_history_duplicates
            + self.booking_key_duplicates
            + self.replay_mismatches
            + self.sms_duplicates
        )

    def problems(self) -> list[str]:
        found = []
        if self.lost:
            found.append(f"{len(self.lost)} acknowledged event(s) not stored: {self.lost[:5]}")
        if self.unfinished:
            found.append(f"acknowledged events not processed: {self.unfinished}")
        if self.payments_missing:
            found.append(f"{self.payments_missing} processed event(s) without their Payment")
        if self.duplicate_effects:
            found.append(f"{self.duplicate_effects} duplicate effect(s)")
        if self.deposits_stranded:
            found.append(
                f"{self.deposits_stranded} booking(s) with a deposit due have no Checkout "
                "Session and none queued (the customer can never pay)"
            )
        if self.double_bookings:
            found.append(f"{self.double_bookings} double booking(s)")
        if not self.constraint:
            found.append("the exclusion constraint appointment_no_overlap is missing")
        if self.constraint_proof and self.constraint_proof != "23P01 exclusion_violation":
            found.append(f"an overlapping insert was not refused: {self.constraint_proof}")
        return found


def connect(dsn: str) -> psycopg.Connection[Any]:
    return psycopg.connect(
        dsn, autocommit=True, connect_timeout=5, options="-c statement_timeout=60000"
    )


def _event_status(conn: psycopg.Connection[Any], ids: list[str]) -> dict[str, list[str]]:
    rows = conn.execute(
        "SELECT dedup_key, status FROM webhooks_webhookevent "
        "WHERE provider = 'stripe' AND dedup_key = ANY(%s)",
        [ids],
    ).fetchall()
    found: dict[str, list[str]] = {}
    for key, status in rows:
        found.setdefault(key, []).append(status)
    return found


def wait_processed(dsn: str, ids: list[str], timeout: float) -> float:
    """Wait until every one of these events is processed; seconds waited (or -1)."""
    started = time.monotonic()
    while True:
        try:
            with connect(dsn) as conn:
                found = _event_status(conn, ids)
            if all(statuses == ["processed"] for statuses in (found.get(i) for i in ids)):
                return time.monotonic() - started
        except psycopg.Error:
            pass
        if time.monotonic() - started > timeout:
            return -1.0
        time.sleep(1)


def check(dsn: str, ledger: Ledger, sms_file: Path, drain_timeout: float) -> Invariants:
    """The invariants over what the traffic had seen when called (later answers are the
    next check's): first wait until those events are processed, then look."""
    result = Invariants()
    # Rows written after this can still belong to requests in flight at the snapshot.
    cutoff = time.time() - TIMEOUT_S - 2
    with ledger.lock:
        accepted = {k: list(v) for k, v in ledger.accepted.items()}
        acknowledged = set(accepted) | set(ledger.duplicate_acked)
        deliveries = dict(ledger.deliveries)
        bookings = list(ledger.bookings.values())
        result.replay_mismatches = len(ledger.replay_mismatches)
    ids = sorted(acknowledged)
    result.waited_s = wait_processed(dsn, ids, drain_timeout)
    result.acknowledged, result.accepted = len(ids), len(accepted)
    result.double_accepted = sum(1 for times in accepted.values() if len(times) > 1)
    with connect(dsn) as conn:
        found = _event_status(conn, ids)
        result.stored = sum(1 for i in ids if i in found)
        result.lost = [i for i in ids if i not in found]
        processed = [i for i in ids if found.get(i) == ["processed"]]
        result.processed = len(processed)
        unfinished = Counter(s for i in ids for s in found.get(i, []) if s != "processed")
        result.unfinished = dict(unfinished)
        row = conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM webhooks_webhookevent "
            "GROUP BY endpoint_id, dedup_key HAVING count(*) > 1) AS twice"
        ).fetchone()
        result.duplicate_rows = int(row[0]) if row else 0
        ours = conn.execute(
            "SELECT dedup_key FROM webhooks_webhookevent "
            "WHERE dedup_key LIKE 'evt_chaos%%' AND received_at < to_timestamp(%s)",
            [cutoff],
        ).fetchall()
        result.stored_without_ack = sum(1 for (key,) in ours if key not in acknowledged)
        result.inbox = dict(
            conn.execute(
                "SELECT status, count(*) FROM webhooks_webhookevent GROUP BY status"
            ).fetchall()
        )
        _effects(conn, result, [deliveries[i].intent_id for i in processed if i in deliveries])
        _bookings(conn, result, bookings, cutoff)
        _double_bookings(conn, result)
    result.sms_sent, result.sms_duplicates = _sms(sms_file)
    return result


def _effects(conn: psycopg.Connection[Any], result: Invariants, intents: list[str]) -> None:
    result.payments_expected = len(intents)
    rows = conn.execute(
        "SELECT payment_intent_id FROM webhooks_payment WHERE payment_intent_id = ANY(%s)",
        [intents],
    ).fetchall()
    result.payments_missing = len(set(intents) - {r[0] for r in rows})
    row = conn.execute(
        "SELECT count(*) FROM (SELECT 1 FROM webhooks_payment "
        "GROUP BY company_id, payment_intent_id HAVING count(*) > 1) AS twice"
    ).fetchone()
    result.payments_duplicate = int(row[0]) if row else 0
    row = conn.execute(
        "SELECT count(*) FROM (SELECT 1 FROM bookings_appointmenthistory WHERE action = 'deposit' "
        "GROUP BY appointment_id HAVING count(*) > 1) AS twice"
    ).fetchone()
    result.deposit_history_duplicates = int(row[0]) if row else 0


def _bookings(
    conn: psycopg.Connection[Any], result: Invariants, bookings: list[Any], cutoff: float
) -> None:
    result.bookings_won = sum(
        1 for b in bookings if any(status == 201 for status, _, _ in b.answers)
    )
    rows = conn.execute(
        "SELECT notes, count(*) FROM bookings_appointment "
        "WHERE notes LIKE 'chaos:chaos-%%' GROUP BY notes"
    ).fetchall()
    result.appointments = sum(int(n) for _, n in rows)
    result.booking_key_duplicates = sum(1 for _, n in rows if n > 1)
    won = {f"chaos:{b.key}" for b in bookings if any(s == 201 for s, _, _ in b.answers)}
    settled = conn.execute(
        "SELECT notes FROM bookings_appointment "
        "WHERE notes LIKE 'chaos:chaos-%%' AND created_at < to_timestamp(%s)",
        [cutoff],
    ).fetchall()
    result.booked_without_201 = sum(1 for (notes,) in settled if notes not in won)
    row = conn.execute(STRANDED_DEPOSITS_SQL, [cutoff]).fetchone()
    result.deposits_stranded = int(row[0]) if row else 0


def _double_bookings(conn: psycopg.Connection[Any], result: Invariants) -> None:
    row = conn.execute(DOUBLE_BOOKINGS_SQL).fetchone()
    result.double_bookings = int(row[0]) if row else 0
    row = conn.execute(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conname = 'appointment_no_overlap' AND contype = 'x'"
    ).fetchone()
    result.constraint = str(row[0]) if row else ""
    result.constraint_proof = prove_constraint(conn)


def prove_constraint(conn: psycopg.Connection[Any]) -> str:
    """Copy an active appointment (same staff, same time) in a transaction that is rolled
    back: PostgreSQL must refuse it with exclusion_violation (23P01)."""
    columns = [
        r[0]
        for r in conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'bookings_appointment' AND column_name <> 'id' "
            "ORDER BY ordinal_position"
        ).fetchall()
    ]
    nulled = {"idempotency_key", "calcom_uid"}  # unique columns: the overlap must be the cause
    target = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    source = sql.SQL(", ").join(
        sql.SQL("NULL") if c in nulled else sql.Identifier(c) for c in columns
    )
    statement = sql.SQL(
        "INSERT INTO bookings_appointment ({}) SELECT {} FROM bookings_appointment "
        "WHERE status IN ('pending', 'confirmed') ORDER BY id LIMIT 1"
    ).format(target, source)
    try:
        with conn.transaction(force_rollback=True):
            conn.execute("SET LOCAL lock_timeout = '5s'")
            cursor = conn.execute(statement)
            return f"inserted {cursor.rowcount} row(s) (rolled back)"
    except psycopg.errors.ExclusionViolation:
        return "23P01 exclusion_violation"
    except psycopg.Error as exc:
        return f"{exc.sqlstate} {type(exc).__name__}"


def _sms(path: Path) -> tuple[int, int]:
    if not path.exists():
        return 0, 0
    sent: Counter[tuple[str, str]] = Counter()
    for line in path.read_text().splitlines():
        try:
            message = json.loads(line)
        except ValueError:
            continue
        sent[(message["to"], message["body"])] += 1
    return sum(sent.values()), sum(n - 1 for n in sent.values() if n > 1)
