"""Each tool's arguments, validated into a small dataclass (``InvalidArguments`` if not).

``service`` and ``staff`` are an id or the name the caller said; dates are
``YYYY-MM-DD`` in the branch's zone; ``start`` is ISO 8601 — with an offset as
``check_availability`` returns it, or a bare wall time read in the branch's zone (a
language model sometimes drops the offset; the branch's clock is what the caller meant).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from webhooks.tools.answers import InvalidArguments

Ref = int | str  # an id, or a name as said
MAX_TEXT = 200


@dataclass(frozen=True, slots=True)
class NoArgs:
    pass


@dataclass(frozen=True, slots=True)
class ListArgs:
    confirm_name: str | None = None


@dataclass(frozen=True, slots=True)
class AvailabilityArgs:
    service: Ref
    staff: Ref | None = None
    date: dt.date | None = None
    date_to: dt.date | None = None


@dataclass(frozen=True, slots=True)
class BookArgs:
    service: Ref
    start: dt.datetime
    name: str
    staff: Ref | None = None


@dataclass(frozen=True, slots=True)
class CancelArgs:
    confirm_name: str
    appointment: int | None = None


@dataclass(frozen=True, slots=True)
class RescheduleArgs:
    start: dt.datetime
    confirm_name: str
    appointment: int | None = None


def _present(args: Mapping[str, Any], key: str) -> bool:
    value = args.get(key)
    return value is not None and not (isinstance(value, str) and not value.strip())


def text(args: Mapping[str, Any], key: str) -> str:
    value = args.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InvalidArguments(key, "a non-empty text is required")
    if len(value) > MAX_TEXT:
        raise InvalidArguments(key, f"at most {MAX_TEXT} characters")
    return value.strip()


def ref(args: Mapping[str, Any], key: str) -> Ref:
    """An id (a number, or digits in a string) or a name."""
    value = args.get(key)
    if isinstance(value, bool):
        raise InvalidArguments(key, "an id or a name is required")
    if isinstance(value, int):
        return value
    name = text(args, key)
    return int(name) if name.isdigit() else name


def integer(args: Mapping[str, Any], key: str) -> int:
    value = args.get(key)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArguments(key, "an id (a number) is required")
    return value


def day(args: Mapping[str, Any], key: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text(args, key)[:10])
    except ValueError:
        raise InvalidArguments(key, "a date YYYY-MM-DD is required") from None


def moment(args: Mapping[str, Any], key: str, tz: ZoneInfo) -> dt.datetime:
    raw = text(args, key).replace("Z", "+00:00")
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidArguments(key, "an ISO 8601 date and time is required") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=tz)


def _availability(args: Mapping[str, Any], tz: ZoneInfo) -> AvailabilityArgs:
    first = day(args, "date") if _present(args, "date") else None
    last = day(args, "date_to") if _present(args, "date_to") else None
    if first is not None and last is not None and last < first:
        raise InvalidArguments("date_to", "must not be before date")
    if last is not None and first is None:
        raise InvalidArguments("date", "is required with date_to")
    return AvailabilityArgs(
        service=ref(args, "service"),
        staff=ref(args, "staff") if _present(args, "staff") else None,
        date=first,
        date_to=last,
    )


def _book(args: Mapping[str, Any], tz: ZoneInfo) -> BookArgs:
    return BookArgs(
        service=ref(args, "service"),
        start=moment(args, "start", tz),
        name=text(args, "name"),
        staff=ref(args, "staff") if _present(args, "staff") else None,
    )


def _appointment(args: Mapping[str, Any]) -> int | None:
    return integer(args, "appointment") if _present(args, "appointment") else None


def _cancel(args: Mapping[str, Any], tz: ZoneInfo) -> CancelArgs:
    return CancelArgs(confirm_name=text(args, "confirm_name"), appointment=_appointment(args))


def _reschedule(args: Mapping[str, Any], tz: ZoneInfo) -> RescheduleArgs:
    return RescheduleArgs(
        start=moment(args, "start", tz),
        confirm_name=text(args, "confirm_name"),
        appointment=_appointment(args),
    )


def _list(args: Mapping[str, Any], tz: ZoneInfo) -> ListArgs:
    return ListArgs(
        confirm_name=text(args, "confirm_name") if _present(args, "confirm_name") else None
    )


def _none(args: Mapping[str, Any], tz: ZoneInfo) -> NoArgs:
    return NoArgs()


PARSERS: dict[str, Callable[[Mapping[str, Any], ZoneInfo], Any]] = {
    "find_customer": _none,
    "list_my_appointments": _list,
    "check_availability": _availability,
    "book_appointment": _book,
    "cancel_appointment": _cancel,
    "reschedule_appointment": _reschedule,
}
