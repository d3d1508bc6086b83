"""Per-provider fault injection: latency, outages, rate limits and error rates.

Precedence: outage > rate_limit > error_rate; latency always applies. ``times`` limits a
fault to the next N requests of that provider, after which it clears itself.
``error_rate`` is deterministic by default (an accumulator: 0.5 fails every second
request, 1.0 every request); ``"random": true`` draws instead.
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

OUTAGE_MODES = ("reset", "503", "timeout")


@dataclass
class Fault:
    """One provider's fault settings (the body of ``PUT /_sim/faults/<provider>``)."""

    latency_ms: int = 0
    error_rate: float = 0.0
    error_status: int = 500
    outage: str | None = None
    rate_limit: dict[str, Any] | None = None
    times: int | None = None
    random: bool = False
    _acc: float = field(default=0.0, repr=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fault:
        """Validate and build; raises ``ValueError`` naming the bad field."""
        known = {"latency_ms", "error_rate", "error_status", "outage", "rate_limit", "times"}
        unknown = set(data) - known - {"random"}
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        outage = data.get("outage")
        if outage is True:
            outage = "reset"
        elif outage is False:
            outage = None
        elif outage is not None:
            outage = str(outage)
            if outage not in OUTAGE_MODES:
                raise ValueError(f"outage must be true/false or one of {OUTAGE_MODES}")
        rate_limit = data.get("rate_limit")
        if rate_limit is not None and not isinstance(rate_limit, dict):
            raise ValueError("rate_limit must be an object like {'retry_after': 2}")
        times = data.get("times")
        if times is not None and (not isinstance(times, int) or times < 1):
            raise ValueError("times must be a positive integer or null")
        error_rate = float(data.get("error_rate") or 0.0)
        if not 0.0 <= error_rate <= 1.0:
            raise ValueError("error_rate must be between 0 and 1")
        return cls(
            latency_ms=int(data.get("latency_ms") or 0),
            error_rate=error_rate,
            error_status=int(data.get("error_status") or 500),
            outage=outage,
            rate_limit=rate_limit,
            times=times,
            random=bool(data.get("random", False)),
        )

    def public(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("_acc")
        return data


@dataclass(frozen=True)
class Decision:
    """What to do with one request: sleep, then maybe answer with a fault."""

    latency_s: float = 0.0
    action: str | None = None  # "reset" | "timeout" | "status"
    status: int = 0
    retry_after: int | None = None
    name: str | None = None  # recorded in the request log


class FaultBook:
    """The current faults, one per provider, safe to use from many request threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: dict[str, Fault] = {}

    def set(self, provider: str, fault: Fault) -> None:
        with self._lock:
            self._faults[provider] = fault

    def clear(self, provider: str | None = None) -> None:
        with self._lock:
            if provider is None:
                self._faults.clear()
            else:
                self._faults.pop(provider, None)

    def dump(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {p: f.public() for p, f in self._faults.items()}

    def decide(self, provider: str) -> Decision:
        """Consume one request's worth of the provider's fault."""
        with self._lock:
            fault = self._faults.get(provider)
            if fault is None:
                return Decision()
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    del self._faults[provider]
            latency = fault.latency_ms / 1000.0
            if fault.outage == "reset":
                return Decision(latency, "reset", name="outage:reset")
            if fault.outage == "timeout":
                return Decision(latency, "timeout", name="outage:timeout")
            if fault.outage == "503":
                return Decision(latency, "status", 503, name="outage:503")
            if fault.rate_limit is not None:
                retry_after = int(fault.rate_limit.get("retry_after", 1))
                return Decision(latency, "status", 429, retry_after, name="rate_limit")
            if fault.error_rate > 0 and self._fails(fault):
                return Decision(latency, "status", fault.error_status, name="error_rate")
            return Decision(latency, name="latency" if latency else None)

    @staticmethod
    def _fails(fault: Fault) -> bool:
        if fault.random:
            return random.random() < fault.error_rate  # noqa: S311 - not security
        fault._acc += fault.error_rate
        if fault._acc >= 1.0 - 1e-9:
            fault._acc -= 1.0
            return True
        return False
