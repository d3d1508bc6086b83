"""Signature checks, one per provider; each raises ``SignatureRejected`` or returns.

Comparisons are constant-time. Stripe's and Retell's come from their official
packages; Stripe's package only rejects *old* timestamps, so far-future ones are ours.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping

import stripe
from retell.lib.webhook_auth import verify as retell_verify

STRIPE_TOLERANCE_S = 300
RETELL_TOLERANCE_MS = 5 * 60 * 1000  # the retell-sdk default, both ways


class SignatureRejected(Exception):
    """The delivery isn't signed by the endpoint's secret (or is stale)."""


def verify_stripe(body: bytes, headers: Mapping[str, str], secret: str) -> None:
    header = headers.get("Stripe-Signature", "")
    try:
        stripe.WebhookSignature.verify_header(
            body.decode("utf-8"), header, secret, tolerance=STRIPE_TOLERANCE_S
        )
    except (stripe.SignatureVerificationError, UnicodeDecodeError, ValueError) as exc:
        raise SignatureRejected(f"stripe: {exc}") from None
    timestamps = [part[2:] for part in header.split(",") if part.startswith("t=")]
    if not timestamps or int(timestamps[0]) > time.time() + STRIPE_TOLERANCE_S:
        raise SignatureRejected("stripe: timestamp in the future")


def verify_retell(body: bytes, headers: Mapping[str, str], secret: str) -> None:
    signature = headers.get("X-Retell-Signature", "")
    try:
        valid = bool(retell_verify(body.decode("utf-8"), secret, signature))
    except (UnicodeDecodeError, ValueError):
        valid = False
    if not valid:
        raise SignatureRejected("retell: bad, missing or stale signature")


def verify_calcom(body: bytes, headers: Mapping[str, str], secret: str) -> None:
    given = headers.get("X-Cal-Signature-256", "")
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not given or not hmac.compare_digest(expected, given.strip().lower()):
        raise SignatureRejected("calcom: bad or missing signature")


VERIFIERS: dict[str, Callable[[bytes, Mapping[str, str], str], None]] = {
    "stripe": verify_stripe,
    "retell": verify_retell,
    "calcom": verify_calcom,
}
