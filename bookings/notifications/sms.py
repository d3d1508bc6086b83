"""The SMS channel: a small protocol, a logging default and an in-memory test backend.

``settings.SMS_BACKEND`` names the class (a dotted path); a real provider is one more
class with ``send(to, body)``. Full phone numbers never reach the logs: ``mask_phone``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


class SmsChannel(Protocol):
    """Sends one text message to an E.164 number; raises on failure (the job retries)."""

    def send(self, to: str, body: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Sms:
    to: str
    body: str


# What MemorySmsChannel sent, like django.core.mail.outbox (tests clear it).
outbox: list[Sms] = []


def mask_phone(phone: str) -> str:
    """``+4915112345678`` → ``+49151****78``: enough to tell numbers apart, not to call."""
    if len(phone) <= 8:
        return "****" + phone[-2:]
    return f"{phone[:6]}****{phone[-2:]}"


class LogSmsChannel:
    """Development default: the message goes to the log, the number shortened."""

    def send(self, to: str, body: str) -> None:
        logger.info("sms to %s: %s", mask_phone(to), body)


class MemorySmsChannel:
    """Test backend: keeps messages in ``outbox``."""

    def send(self, to: str, body: str) -> None:
        outbox.append(Sms(to=to, body=body))


def sms_channel() -> SmsChannel:
    """An instance of the configured backend."""
    channel: SmsChannel = import_string(settings.SMS_BACKEND)()
    return channel
