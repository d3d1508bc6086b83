"""Signature checks, one per provider; each raises ``SignatureRejected`` or returns.

Comparisons are constant-time. Stripe's and Retell's come from their official
packages; Stripe's package only rejects *old* timestamps, so far-future ones are ours.

A signature header must have exactly the shape its provider sends (ASCII, timestamps as
plain decimal numbers, lowercase hex), checked before anything parses it: the official
packages read numbers with ``int()``, which also takes ``+``, ``_``, spaces, leading
zeros and non-ASCII digits, and compare with ``hmac.compare_digest``, which raises
``TypeError`` on non-ASCII text. Checked first, what we read (Stripe's timestamp) is
what they verify, and no header raises anything but ``SignatureRejected``.
A blank secret verifies nothing: anyone can sign with it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping

import stripe
from retell.lib.webhook_auth import verify as retell_verify

STRIPE_TOLERANCE_S = 300
RETELL_TOLERANCE_MS = 5 * 60 * 1000  # the retell-sdk default, both ways

# t=<unix s>,v1=<hex>[,v1=<hex>][,v0=<hex>]…: the timestamp first and only once.
_STRIPE_HEADER = re.compile(r"t=(0|[1-9][0-9]{0,11})(?:,(?!t=)[a-z][a-z0-9]*=[0-9A-Za-z]+)+")
_RETELL_HEADER = re.compile(r"v=(?:0|[1-9][0-9]{0,15}),d=[0-9a-f]{64}")
_CALCOM_HEADER = re.compile(r"[0-9a-f]{64}")


class SignatureRejected(Exception):
    """The delivery isn't signed by the endpoint's secret (or is stale)."""


def _check_secret(provider: str, secret: str) -> None:
    if not secret or not secret.strip():
        raise SignatureRejected(f"{provider}: no secret configured")


def verify_stripe(body: bytes, headers: Mapping[str, str], secret: str) -> None:
    header = headers.get("Stripe-Signature", "")
    _check_secret("stripe", secret)
    shape = _STRIPE_HEADER.fullmatch(header)
    if shape is None:
        raise SignatureRejected("stripe: malformed Stripe-Signature header")
    try:
        stripe.WebhookSignature.verify_header(
            body.decode("utf-8"), header, secret, tolerance=STRIPE_TOLERANCE_S
        )
    except (stripe.SignatureVerificationError, UnicodeDecodeError, ValueError) as exc:
        raise SignatureRejected(f"stripe: {exc}") from None
    if int(shape.group(1)) > time.time() + STRIPE_TOLERANCE_S:
        raise SignatureRejected("stripe: timestamp in the future")


def verify_retell(body: bytes, headers: Mapping[str, str], secret: str) -> None:
    signature = headers.get("X-Retell-Signature", "")
    _check_secret("retell", secret)
    valid = False
    if _RETELL_HEADER.fullmatch(signature):
        try:
            valid = bool(retell_verify(body.decode("utf-8"), secret, signature))
        except (UnicodeDecodeError, ValueError):
            valid = False
    if not valid:
        raise SignatureRejected("retell: bad, missing or stale signature")


def verify_calcom(body: bytes, headers: Mapping[str, str], secret: str) -> None:
    given = headers.get("X-Cal-Signature-256", "")
    _check_secret("calcom", secret)
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not _CALCOM_HEADER.fullmatch(given) or not hmac.compare_digest(expected, given):
        raise SignatureRejected("calcom: bad or missing signature")


VERIFIERS: dict[str, Callable[[bytes, Mapping[str, str], str], None]] = {
    "stripe": verify_stripe,
    "retell": verify_retell,
    "calcom": verify_calcom,
}
