"""The shapes of tool answers (DESIGN.md): always HTTP 200, a ``status``, a ``spoken`` text."""

from __future__ import annotations

from typing import Any

Answer = dict[str, Any]


class ToolRefusal(Exception):
    """A refusal the caller hears (``{status: "error", code, spoken, ...}``), not a failure."""

    def __init__(self, code: str, spoken: str, **extra: Any) -> None:
        super().__init__(code)
        self.code = code
        self.spoken = spoken
        self.extra = extra

    def answer(self) -> Answer:
        return {"status": "error", "code": self.code, "spoken": self.spoken, **self.extra}


class InvalidArguments(Exception):
    """An argument is missing or malformed; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
