"""Mask what must never reach a log line: secrets whole, phone numbers and e-mails mostly.

A structlog processor, so it runs on every line -- ours and the standard library's --
after exceptions are formatted and before rendering. Two nets:

* by key: a field named like a secret (``api_key``, ``Authorization``, ``password``, …)
  is replaced outright, whatever its value;
* by shape: inside any string, provider secrets (``sk_live_…``, ``whsec_…``, ``key_…``),
  ``Bearer``/``Token`` credentials, signature headers, phone numbers (``+49301****67``)
  and e-mail addresses (``j***@example.com``) are masked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "[redacted]"

_SECRET_KEY = re.compile(
    r"(pass(word|wd)?|secret|token|api[_-]?key|apikey|authorization|cookie|signature|"
    r"private[_-]?key|credentials?|session[_-]?id|csrf|dsn)",
    re.IGNORECASE,
)
# Fields that look secret by name but are safe and useful (ids, flags, counts).
_SAFE_KEYS = frozenset({"token_count", "csrf_failure", "signature_ok", "request_id"})

# (needles, pattern, replacement): a pattern runs only on text containing one of its
# needles (for the credential words: in lower case). Most strings hold none, and the
# substring test is a small fraction of the regular expression's cost.
_SHAPES: tuple[tuple[tuple[str, ...], re.Pattern[str], Any], ...] = (
    # Stripe keys and webhook secrets, Retell keys, generic long bearer credentials.
    (("_live_", "_test_"), re.compile(r"\b(sk|rk|pk)_(live|test)_[A-Za-z0-9]{6,}"), MASK),
    (("whsec_",), re.compile(r"\bwhsec_[A-Za-z0-9+/=]{6,}"), MASK),
    (("key_",), re.compile(r"\bkey_[A-Za-z0-9]{12,}"), MASK),
    (
        ("bearer", "token", "basic"),
        re.compile(r"\b(Bearer|Token|Basic)\s+[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE),
        r"\1 " + MASK,
    ),
    # Signature headers quoted in messages: Stripe's t=…,v1=…; Retell's v=…,d=….
    (("=",), re.compile(r"\b(v1|v0|d)=[0-9a-f]{32,}"), r"\1=" + MASK),
    (("sessionid=",), re.compile(r"\bsessionid=[^;\s]+"), "sessionid=" + MASK),
    (("csrftoken=",), re.compile(r"\bcsrftoken=[^;\s]+"), "csrftoken=" + MASK),
    # Phone numbers in E.164 (what we store and send): keep the country/area and the end.
    (("+",), re.compile(r"(?<![\w+])(\+\d{5})\d{2,9}(\d{2})(?!\d)"), r"\1****\2"),
    (("%2b",), re.compile(r"(%2B\d{5})\d{2,9}(\d{2})(?!\d)", re.IGNORECASE), r"\1****\2"),
    # E-mail addresses: the first letter and the domain.
    (
        ("@",),
        re.compile(r"\b([A-Za-z0-9])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})\b"),
        r"\1***@\2",
    ),
)
# Fields our own pipeline fills with ids, names and numbers: nothing to mask there.
_PLAIN_KEYS = frozenset(
    {
        "timestamp",
        "level",
        "logger",
        "request_id",
        "view",
        "ip",
        "code",
        "duration_ms",
        "company_id",
        "user_id",
        "task_id",
        "parent_task_id",
        "task",
        "trace_id",
        "span_id",
    }
)


def redact_text(text: str) -> str:
    lowered = text.lower()
    for needles, pattern, replacement in _SHAPES:
        if any(needle in lowered for needle in needles):
            text = pattern.sub(replacement, text)
    return text


def _is_secret_key(key: object) -> bool:
    return isinstance(key, str) and key not in _SAFE_KEYS and bool(_SECRET_KEY.search(key))


def redact_value(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if depth > 12:
        return value
    if isinstance(value, Mapping):
        return {
            k: MASK if _is_secret_key(k) else redact_value(v, depth + 1) for k, v in value.items()
        }
    if isinstance(value, list | tuple | set):
        return [redact_value(v, depth + 1) for v in value]
    return value


def redact_event(logger: Any, method_name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: redact every field of the event, in place."""
    for key, value in event_dict.items():
        if key in _PLAIN_KEYS:
            continue
        if _is_secret_key(key):
            event_dict[key] = MASK
        elif isinstance(value, str | Mapping | list | tuple | set):
            event_dict[key] = redact_value(value)
    return event_dict
