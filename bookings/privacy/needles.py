"""What identifies one customer in stored text, and how to find and cut it out.

A phone number is searched for by its national significant number with any separators
(``+49 151 1234-5678``, ``015112345678``, ``4915112345678`` all match), an e-mail
address case-insensitively. The name is only cut out of rows already known to be the
customer's: two people can share a name, and another person's row must not lose theirs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import phonenumbers
from django.db.models import Field, JSONField, Q, TextField
from django.db.models.functions import Cast

ERASED = "[erased]"
_SEPARATORS = "[-. /()]*"  # the same class in Python and PostgreSQL regular expressions
MIN_NAME_LENGTH = 3


@dataclass(frozen=True)
class Needles:
    """One customer's phone (E.164), e-mail and name, as search patterns."""

    phone: str = ""
    email: str = ""
    name: str = ""
    _digits: str = field(default="", init=False, repr=False)
    _country_code: str = field(default="", init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.phone:
            return
        try:
            parsed = phonenumbers.parse(self.phone)
        except phonenumbers.NumberParseException:  # stored before numbers were normalised
            object.__setattr__(self, "_digits", re.sub(r"\D", "", self.phone))
            return
        significant = phonenumbers.national_significant_number(parsed)
        object.__setattr__(self, "_digits", significant)
        object.__setattr__(self, "_country_code", str(parsed.country_code))

    def __bool__(self) -> bool:
        return bool(self._digits or self.email)

    # --- in the database -----------------------------------------------------------------

    @property
    def phone_regex(self) -> str:
        """The national significant number with optional separators (PostgreSQL ``~``)."""
        return _SEPARATORS.join(self._digits)

    def q_for(self, field_name: str) -> Q | None:
        """Rows whose text column ``field_name`` holds the phone or the e-mail."""
        found = []
        if self._digits:
            found.append(Q(**{f"{field_name}__regex": self.phone_regex}))
        if self.email:
            found.append(Q(**{f"{field_name}__icontains": self.email}))
        if not found:
            return None
        q = found[0]
        for more in found[1:]:
            q |= more
        return q

    # --- in Python -----------------------------------------------------------------------

    def is_phone(self, raw: Any) -> bool:
        """Whether ``raw`` (any notation, with or without country code) is the number."""
        digits = re.sub(r"\D", "", str(raw or ""))
        national, country = self._digits, self._country_code
        forms = {national, f"0{national}", f"{country}{national}", f"00{country}{national}"}
        return bool(national) and digits in forms

    def is_email(self, raw: Any) -> bool:
        return bool(self.email) and str(raw or "").strip().lower() == self.email.lower()

    def _patterns(self, with_name: bool) -> list[re.Pattern[str]]:
        patterns = []
        if self._digits:
            # "+49 (0)", "0049", "49" or the trunk "0" before it, maybe in brackets.
            prefix = (
                rf"\(?(?:(?:(?:\+|00){_SEPARATORS})?{self._country_code}{_SEPARATORS}"
                rf"(?:\(0\){_SEPARATORS})?|0{_SEPARATORS})?"
            )
            patterns.append(re.compile(prefix + self.phone_regex))
        if self.email:
            patterns.append(re.compile(re.escape(self.email), re.IGNORECASE))
        name = " ".join(self.name.split())
        if with_name and len(name) >= MIN_NAME_LENGTH:
            spaced = r"\s+".join(re.escape(part) for part in name.split(" "))
            patterns.append(re.compile(spaced, re.IGNORECASE))
        return patterns

    def scrub(self, text: str, *, with_name: bool = False) -> str:
        """``text`` with every occurrence replaced by ``[erased]``."""
        for pattern in self._patterns(with_name):
            text = pattern.sub(ERASED, text)
        return text

    def scrub_json(self, value: Any, *, with_name: bool = False) -> Any:
        """A JSON value with every string (and key) scrubbed."""
        if isinstance(value, str):
            return self.scrub(value, with_name=with_name)
        if isinstance(value, list):
            return [self.scrub_json(item, with_name=with_name) for item in value]
        if isinstance(value, dict):
            return {
                self.scrub(str(key), with_name=with_name): self.scrub_json(
                    item, with_name=with_name
                )
                for key, item in value.items()
            }
        return value

    def scrub_value(self, value: Any, *, with_name: bool = False) -> Any:
        """A column's value scrubbed: text or JSON; anything else as it is."""
        if isinstance(value, str):
            return self.scrub(value, with_name=with_name)
        return self.scrub_json(value, with_name=with_name)


def searchable(model_field: Field[Any, Any], alias: str) -> tuple[str, Any | None]:
    """The name to filter ``model_field`` on as text, and the annotation it needs (JSON)."""
    if isinstance(model_field, JSONField):
        return alias, Cast(model_field.name, TextField())
    return model_field.name, None
