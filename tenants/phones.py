"""Phone numbers: parse what people and caller-ID give us, store E.164."""

from __future__ import annotations

import phonenumbers

# What carriers and voice platforms put in caller-ID when there is no number.
WITHHELD_CALLER_IDS = frozenset(
    {"anonymous", "private", "unknown", "restricted", "unavailable", "withheld", ""}
)


class InvalidPhone(ValueError):
    """The text is not a dialable phone number."""


def normalize_phone(raw: str, default_region: str) -> str:
    """Return ``raw`` as E.164, reading national numbers in ``default_region``."""
    text = (raw or "").strip()
    if text.lower() in WITHHELD_CALLER_IDS:
        raise InvalidPhone("No phone number was given (caller ID withheld).")
    if len(text) > 40:
        raise InvalidPhone("A phone number has at most 40 characters.")
    try:
        parsed = phonenumbers.parse(text, default_region.upper())
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone("This is not a phone number.") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhone("This phone number is not valid.")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def mask_phone(e164: str) -> str:
    """Shorten a number for logs: ``+49301234567`` -> ``+49301****67``."""
    if len(e164) <= 8:
        return "****"
    return f"{e164[:6]}****{e164[-2:]}"
