"""Webhook signatures exactly as each provider computes them."""

from __future__ import annotations

import hashlib
import hmac
import time


def _hex_hmac(key: str, message: bytes) -> str:
    return hmac.new(key.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign_stripe(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """``Stripe-Signature``: ``t=<unix s>,v1=<hex HMAC-SHA256 of "{t}.{body}">`` (whsec_ key)."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={_hex_hmac(secret, f'{t}.'.encode() + body)}"


def sign_calcom(body: bytes, secret: str) -> str:
    """``X-Cal-Signature-256``: hex HMAC-SHA256 of the raw body."""
    return _hex_hmac(secret, body)


def sign_retell(body: bytes, api_key: str, timestamp_ms: int | None = None) -> str:
    """``x-retell-signature``: ``v=<unix ms>,d=<hex HMAC-SHA256 of body + str(ms)>``."""
    ms = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    return f"v={ms},d={_hex_hmac(api_key, body + str(ms).encode())}"
