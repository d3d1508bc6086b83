"""The booking domain's errors: one family, mapped to HTTP once, in the API layer."""

from __future__ import annotations


class BookingError(Exception):
    """A booking request that can't be honoured; ``field`` names the culprit."""

    code = "validation_error"
    field = "start"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if field is not None:
            self.field = field


class SlotTaken(BookingError):
    """Another active appointment holds (part of) this time."""

    code = "slot_taken"


class SlotUnavailable(BookingError):
    """Outside working hours, in time off or a closure, or off the slot grid."""


class OutsideBookingWindow(BookingError):
    """In the past, inside the minimum notice, or beyond the horizon."""


class NotOffered(BookingError):
    """The staff member doesn't offer the service (or either is inactive)."""

    field = "staff"


class InvalidTransition(BookingError):
    """The appointment's status doesn't allow this change."""

    field = "status"
