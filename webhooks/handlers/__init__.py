"""Handlers per (provider, event type). Each is idempotent and runs inside the
transaction that marks its event processed, so its effect lands exactly once."""

from __future__ import annotations

from collections.abc import Callable

from webhooks.models import WebhookEvent

Handler = Callable[[WebhookEvent], None]
_HANDLERS: dict[tuple[str, str], Handler] = {}


def handles(provider: str, *event_types: str) -> Callable[[Handler], Handler]:
    """Register the decorated function for ``provider``'s ``event_types``."""

    def register(handler: Handler) -> Handler:
        for event_type in event_types:
            _HANDLERS[(provider, event_type)] = handler
        return handler

    return register


def handler_for(provider: str, event_type: str) -> Handler | None:
    _load()
    return _HANDLERS.get((provider, event_type))


def _load() -> None:
    # Imported lazily: the modules register themselves.
    from webhooks.handlers import calcom, retell, stripe  # noqa: F401


class PermanentFailure(Exception):
    """Retrying won't help (bad data): the event goes dead at once."""
