"""What a breaker's state store answers; Redis and process-local stores both speak it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from integrations.breakers.policy import BreakerPolicy

Decision = Literal["allow", "probe", "reject"]
Outcome = Literal["success", "failure", "slow"]


@dataclass(frozen=True, slots=True)
class Admission:
    decision: Decision
    state: str
    retry_at_ms: int = 0
    transitioned_from: str = ""


@dataclass(frozen=True, slots=True)
class Recorded:
    state: str
    transitioned_from: str = ""
    calls: int = 0
    failures: int = 0
    slow: int = 0


@dataclass(frozen=True, slots=True)
class Snapshot:
    state: str  # closed | open | half_open
    forced: str  # "" | open | closed
    open_until_ms: int
    changed_at_ms: int
    calls: int
    failures: int
    slow: int
    probe_in_flight: bool
    now_ms: int

    @property
    def effective(self) -> str:
        """What a caller meets: a forced mode wins over the automatic state."""
        return f"forced_{self.forced}" if self.forced else self.state


class BreakerStore(Protocol):
    kind: str

    def acquire(self, name: str, token: str, policy: BreakerPolicy) -> Admission: ...

    def record(
        self, name: str, outcome: Outcome, token: str, policy: BreakerPolicy
    ) -> Recorded: ...

    def force(self, name: str, mode: str) -> tuple[str, str]: ...

    def snapshot(self, name: str, policy: BreakerPolicy) -> Snapshot: ...
