"""A separate OS process holding a breaker, driven line by line over stdin/stdout.

    python -m tests.processes.breaker_worker <redis_url> <policy json>

Commands (one JSON object per line) and answers:
    {"op": "fail", "n": 4}                 -> {"transitions": [...]}
    {"op": "burst", "threads": 10, "at": <unix time>, "hold": 0.2}
        every thread calls acquire() at the same instant; a probe holds its lease
        `hold` seconds, then records success   -> {"decisions": [...]}
    {"op": "call", "outcome": "success"}   -> {"decision": "allow|probe|reject"}
    {"op": "state"}                        -> {"state": "...", "forced": "..."}
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any


def main() -> None:
    redis_url, policy_json = sys.argv[1], sys.argv[2]
    os.environ["REDIS_URL"] = redis_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "askpro.settings_test")
    import django

    django.setup()
    from integrations.breakers import Breaker, BreakerPolicy
    from integrations.errors import ProviderUnavailable

    breaker = Breaker("calcom", BreakerPolicy(**json.loads(policy_json)))

    def attempt(outcome: str, hold: float = 0.0) -> str:
        try:
            permit = breaker.acquire("worker")
        except ProviderUnavailable:
            return "reject"
        time.sleep(hold if permit.probe else 0)
        permit.record(outcome)
        return "probe" if permit.probe else "allow"

    def handle(cmd: dict[str, Any]) -> dict[str, Any]:
        if cmd["op"] == "fail":
            seen = []
            for _ in range(cmd["n"]):
                try:
                    permit = breaker.acquire("worker")
                except ProviderUnavailable:
                    break
                recorded = permit.record("failure")
                if recorded.transitioned_from:
                    seen.append(f"{recorded.transitioned_from}->{recorded.state}")
            return {"transitions": seen}
        if cmd["op"] == "burst":
            decisions: list[str] = []
            lock = threading.Lock()

            def one() -> None:
                time.sleep(max(0.0, cmd["at"] - time.time()))
                decision = attempt("success", cmd.get("hold", 0.0))
                with lock:
                    decisions.append(decision)

            threads = [threading.Thread(target=one) for _ in range(cmd["threads"])]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return {"decisions": decisions}
        if cmd["op"] == "call":
            return {"decision": attempt(cmd["outcome"])}
        snap = breaker.snapshot()
        return {"state": snap.state, "forced": snap.forced}

    print(json.dumps({"ready": os.getpid()}), flush=True)
    for line in sys.stdin:
        print(json.dumps(handle(json.loads(line))), flush=True)


if __name__ == "__main__":
    main()
