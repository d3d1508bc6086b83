"""Serializer and filter fields for the booking API."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from django import forms
from django.utils import timezone
from django_filters.fields import IsoDateTimeField
from rest_framework import serializers

# Far enough for any booking horizon; near enough that date arithmetic never overflows.
EARLIEST_DATE_OFFSET = timedelta(days=366)
LATEST_DATE_OFFSET = timedelta(days=2 * 366)


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 datetime that must carry a UTC offset; naive input is refused."""

    default_error_messages = {
        "naive": "Include a UTC offset, e.g. 2026-05-04T10:00:00+02:00.",
        "out_of_range": "This date is too far from today.",
    }

    def to_internal_value(self, value: Any) -> datetime:
        if isinstance(value, str) and timezone.is_naive(_parse_loosely(value)):
            self.fail("naive")
        parsed: datetime = super().to_internal_value(value)
        today = timezone.now()
        if not today - EARLIEST_DATE_OFFSET <= parsed <= today + LATEST_DATE_OFFSET:
            self.fail("out_of_range")
        return parsed


def _parse_loosely(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return timezone.now()  # not ISO at all: let DateTimeField report the format


class BoundedDateField(serializers.DateField):
    """A calendar date within the range the booking system plans for."""

    default_error_messages = {"out_of_range": "This date is too far from today."}

    def to_internal_value(self, value: Any) -> date:
        parsed: date = super().to_internal_value(value)
        today = timezone.localdate()
        if not today - EARLIEST_DATE_OFFSET <= parsed <= today + LATEST_DATE_OFFSET:
            self.fail("out_of_range")
        return parsed


class UtcIsoDateTimeField(IsoDateTimeField):
    """django-filter's ISO 8601 field, converted to UTC.

    Python accepts offsets up to ±23:59, PostgreSQL only up to ±15:59: passed on as
    given, ``?start_after=…+23:30`` was a 500. (DRF's serializer fields convert to the
    current time zone themselves; django-filter's don't.)"""

    default_error_messages = {"out_of_range": "This date is too far from today."}

    def to_python(self, value: Any) -> datetime | None:
        parsed: datetime | None = super().to_python(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(UTC)
        except OverflowError:  # 9999-12-31T23:00-05:00 has no UTC
            raise forms.ValidationError(
                self.error_messages["out_of_range"], code="out_of_range"
            ) from None
