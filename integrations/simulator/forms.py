"""Stripe's form encoding: ``a[b][0][c]=x`` and ``expand[]=y`` into nested dicts and lists."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

_SEGMENT = re.compile(r"\[([^\[\]]*)\]")

# Maps whose keys are the caller's own: digit keys there stay dict keys.
_FREE_FORM = frozenset({"metadata"})


class FormError(ValueError):
    """A key that contradicts an earlier one (``a=1`` and ``a[b]=2``) or is malformed."""


def split_key(key: str) -> list[str]:
    """``line_items[0][quantity]`` -> ``["line_items", "0", "quantity"]``; ``[]`` -> ``""``."""
    head, bracket, _ = key.partition("[")
    if not head:
        raise FormError(f"malformed key {key!r}")
    if not bracket:
        return [head]
    rest = key[len(head) :]
    parts = _SEGMENT.findall(rest)
    if "".join(f"[{p}]" for p in parts) != rest:
        raise FormError(f"malformed key {key!r}")
    return [head, *parts]


def parse_form(data: str | bytes | list[tuple[str, str]]) -> dict[str, Any]:
    """Decode a urlencoded body (or query) with bracket notation into nested values."""
    if isinstance(data, bytes):
        data = data.decode("utf-8")
    pairs = parse_qsl(data, keep_blank_values=True) if isinstance(data, str) else data
    root: dict[str, Any] = {}
    appended: dict[tuple[str, ...], int] = {}
    for key, value in pairs:
        parts = split_key(key)
        node = root
        for i, part in enumerate(parts):
            if part == "":  # "[]": the next free index under this prefix
                prefix = tuple(parts[:i])
                part = str(appended.get(prefix, 0))
                appended[prefix] = int(part) + 1
            if i == len(parts) - 1:
                if isinstance(node.get(part), dict):
                    raise FormError(f"conflicting keys at {key!r}")
                node[part] = value
            else:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    raise FormError(f"conflicting keys at {key!r}")
                node = child
    result: dict[str, Any] = _listify(root, free=False)
    return result


def _listify(value: Any, free: bool) -> Any:
    if not isinstance(value, dict):
        return value
    converted = {k: _listify(v, free=k in _FREE_FORM) for k, v in value.items()}
    if not free and converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted
