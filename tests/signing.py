"""Sign deliveries the way each provider does, with their own routines where they exist."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import stripe
from retell.lib.webhook_auth import symmetric as retell_signing

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"


def fixture(name: str) -> dict[str, Any]:
    """A provider payload from ../shared/fixtures (e.g. ``stripe/payment_intent.succeeded``)."""
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def stripe_header(body: bytes, secret: str, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    signature = stripe.WebhookSignature._compute_signature(f"{t}.{body.decode()}", secret)
    return f"t={t},v1={signature}"


def retell_header(body: bytes, api_key: str, timestamp_ms: int | None = None) -> str:
    header: str = retell_signing["sign"](body.decode(), api_key, timestamp_ms)
    return header


def calcom_header(body: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed_headers(provider: str, body: bytes, secret: str) -> dict[str, str]:
    """Django test-client headers for a correctly signed delivery."""
    if provider == "stripe":
        return {"HTTP_STRIPE_SIGNATURE": stripe_header(body, secret)}
    if provider == "retell":
        return {"HTTP_X_RETELL_SIGNATURE": retell_header(body, secret)}
    return {"HTTP_X_CAL_SIGNATURE_256": calcom_header(body, secret)}
