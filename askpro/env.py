"""Strict reading of environment variables: a bad value names its variable.

``django-environ`` parses URLs; it reads ``"yes please"`` as ``False`` and a typo in a
number as a crash without the variable's name, so the scalar readers here are strict.
"""

from __future__ import annotations

import os
import re
from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Any

import environ
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_RATE = re.compile(r"^\d+/(s|sec|second|m|min|minute|h|hour|d|day)$")

_environ = environ.Env()
_DATABASE_ENGINES = {"django.db.backends.postgresql", "django.db.backends.sqlite3"}


class EnvError(ImproperlyConfigured):
    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"Environment variable {name}: {problem}")


def raw(name: str) -> str | None:
    value = os.environ.get(name)
    return value.strip() if value is not None and value.strip() != "" else None


def string(name: str, default: str | None = None) -> str | None:
    return raw(name) or default


def boolean(name: str, default: bool) -> bool:
    value = raw(name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise EnvError(name, f"expected true or false, got {value!r}")


def integer(name: str, default: int, minimum: int | None = None) -> int:
    value = raw(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise EnvError(name, f"expected an integer, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise EnvError(name, f"must be at least {minimum}, got {number}")
    return number


def choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = (raw(name) or default).lower()
    if value not in choices:
        raise EnvError(name, f"expected one of {', '.join(choices)}, got {value!r}")
    return value


def rate(name: str, default: str) -> str:
    value = raw(name) or default
    if not _RATE.match(value):
        raise EnvError(name, f"expected a rate such as 600/min, got {value!r}")
    return value


def csv(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in (raw(name) or default).split(",") if item.strip()]


def networks(name: str, default: str) -> list[IPv4Network | IPv6Network]:
    """Comma-separated CIDRs (``10.0.0.0/8,::1/128``); a bare address is one host."""
    result: list[IPv4Network | IPv6Network] = []
    for item in csv(name, default):
        try:
            result.append(ip_network(item, strict=False))
        except ValueError:
            raise EnvError(name, f"not an IP network: {item!r}") from None
    return result


def database(name: str, default: str) -> dict[str, Any]:
    value = raw(name) or default
    try:
        config = _environ.db_url_config(value)
    except Exception as exc:
        raise EnvError(name, f"not a database URL ({exc})") from None
    if config.get("ENGINE") not in _DATABASE_ENGINES:
        scheme = value.split(":", 1)[0]
        raise EnvError(name, f"unsupported scheme {scheme!r}: use postgres:// or sqlite://")
    return dict(config)


def url(name: str, schemes: tuple[str, ...], default: str | None = None) -> str | None:
    value = raw(name) or default
    if value is None:
        return None
    scheme = value.split("://", 1)[0] if "://" in value else ""
    if scheme not in schemes:
        raise EnvError(name, f"expected a URL starting with {' or '.join(schemes)}://")
    return value.rstrip("/")


def fernet_keys(name: str) -> list[str]:
    keys = csv(name)
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key.encode())
        except (ValueError, TypeError):
            raise EnvError(name, f"key {position} is not a Fernet key") from None
    return keys
