"""Encryption at rest for secrets (webhook secrets, provider credentials).

``FIELD_ENCRYPTION_KEYS`` is a key ring: the first key encrypts, every key decrypts, so
a new key can be put in front without downtime and ``rotate_keys`` re-encrypts later.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from functools import cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.signals import setting_changed
from django.db import models
from django.dispatch import receiver

logger = logging.getLogger(__name__)


class DecryptionFailed(ValueError):
    """No key in FIELD_ENCRYPTION_KEYS opens this value."""


@cache
def keyring() -> MultiFernet:
    keys = list(settings.FIELD_ENCRYPTION_KEYS)
    if not keys:
        # Development fallback: a key derived from SECRET_KEY, stable across restarts.
        logger.warning("FIELD_ENCRYPTION_KEYS is empty: deriving a key from SECRET_KEY")
        digest = hashlib.sha256(f"askpro-fields:{settings.SECRET_KEY}".encode()).digest()
        keys = [base64.urlsafe_b64encode(digest).decode()]
    return MultiFernet([Fernet(key.encode()) for key in keys])


@receiver(setting_changed)
def _forget_keyring(*, setting: str, **kwargs: Any) -> None:
    if setting in ("FIELD_ENCRYPTION_KEYS", "SECRET_KEY"):
        keyring.cache_clear()


def encrypt(plaintext: str) -> str:
    return keyring().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return keyring().decrypt(token.encode()).decode()
    except InvalidToken:
        raise DecryptionFailed("no configured key decrypts this value") from None


def reencrypt(token: str) -> str:
    """The same plaintext under the newest key (``MultiFernet.rotate``)."""
    return keyring().rotate(token.encode()).decode()


class EncryptedTextField(models.TextField):
    """Text stored as Fernet ciphertext; Python sees plaintext. Not searchable."""

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        return None if value is None else decrypt(value)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        return None if value is None else encrypt(str(value))
