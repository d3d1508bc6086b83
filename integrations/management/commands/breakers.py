"""Show or set the providers' circuit breakers (shared by every process through Redis)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from integrations.breakers import NAMES, get_breaker
from integrations.breakers.core import store_kind
from integrations.breakers.store import Snapshot

ACTIONS = {"open": "open", "close": "closed", "reset": "reset"}


def _iso(ms: int) -> str | None:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat() if ms else None


def describe(name: str, snap: Snapshot) -> dict[str, Any]:
    waiting = snap.state == "open" and not snap.forced and snap.open_until_ms > snap.now_ms
    return {
        "name": name,
        "state": snap.effective,
        "automatic_state": snap.state,
        "forced": snap.forced or None,
        "window": {"calls": snap.calls, "failures": snap.failures, "slow": snap.slow},
        "next_probe_at": _iso(snap.open_until_ms) if waiting else None,
        "probe_in_flight": snap.probe_in_flight,
        "changed_at": _iso(snap.changed_at_ms),
    }


class Command(BaseCommand):
    help = (
        "Circuit breakers: `status` (default); `open NAME` / `close NAME` force a state "
        "that persists until `reset NAME` returns it to automatic. Names: " + ", ".join(NAMES)
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", nargs="?", default="status", choices=["status", *ACTIONS])
        parser.add_argument("name", nargs="?", choices=NAMES)
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, action: str, name: str | None, **options: Any) -> None:
        if action != "status":
            if name is None:
                raise CommandError(f"`breakers {action}` needs a breaker name: {', '.join(NAMES)}")
            get_breaker(name).force(ACTIONS[action])
        names = [name] if name else list(NAMES)
        rows = [describe(n, get_breaker(n).snapshot()) for n in names]
        store = store_kind()
        if options["json"]:
            self.stdout.write(json.dumps({"store": store, "breakers": rows}))
            return
        self.stdout.write(f"breaker state (store: {store})")
        for row in rows:
            calls, failed, slow = row["window"].values()
            line = (
                f"{row['name']:8} {row['state']:14} "
                f"window {calls} calls, {failed} failed, {slow} slow"
            )
            if row["next_probe_at"]:
                line += f"; next probe {row['next_probe_at']}"
            if row["probe_in_flight"]:
                line += "; probe in flight"
            self.stdout.write(line)
