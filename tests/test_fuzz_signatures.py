"""Properties of the webhook signature verifiers (issue 10): a delivery signed the way the
provider signs verifies; any change to its body, signature header or timestamp, a stale
or far-future timestamp, or another secret is refused with ``SignatureRejected`` — never
accepted, never another exception (which the ingest view would turn into a 500).

The signers here are written from the providers' documentation (DESIGN.md, "Provider
facts"), independently of the verifiers, and are checked against the providers' own
signing routines (tests/signing.py). Retell's live tools (webhooks/tools/signed.py) use
``verify_retell`` too, so these properties cover them. No database: these run in the
SQLite smoke run as well.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.signing import calcom_header, retell_header, stripe_header
from webhooks.verifiers import (
    RETELL_TOLERANCE_MS,
    STRIPE_TOLERANCE_S,
    SignatureRejected,
    verify_calcom,
    verify_retell,
    verify_stripe,
)

pytestmark = pytest.mark.smoke

PROPERTY = settings(max_examples=200, derandomize=True, deadline=None, database=None)
MARGIN_S = 5  # keeps "fresh" and "stale" clear of the tolerance edge while a test runs


@dataclass(frozen=True)
class Provider:
    name: str
    header: str
    verify: Callable[[bytes, Mapping[str, str], str], None]
    sign: Callable[[bytes, str, int], str]  # (raw body, secret, unix seconds) -> header
    tolerance_s: int | None  # None: no timestamp
    text_only: bool  # the verifier reads the body as UTF-8 text

    def headers(self, value: str) -> dict[str, str]:
        return {self.header: value}


def _hex_hmac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign_stripe(body: bytes, secret: str, now_s: int) -> str:
    # HMAC-SHA256 over "{t}.{raw body}", keyed with the endpoint secret.
    return f"t={now_s},v1={_hex_hmac(secret, f'{now_s}.'.encode() + body)}"


def sign_retell(body: bytes, secret: str, now_s: int) -> str:
    # HMAC-SHA256 over raw body + str(timestamp in ms), keyed with the Retell API key.
    ms = now_s * 1000
    return f"v={ms},d={_hex_hmac(secret, body + str(ms).encode())}"


def sign_calcom(body: bytes, secret: str, now_s: int) -> str:
    # Hex HMAC-SHA256 of the raw body; no timestamp.
    return _hex_hmac(secret, body)


STRIPE = Provider(
    "stripe", "Stripe-Signature", verify_stripe, sign_stripe, STRIPE_TOLERANCE_S, True
)
RETELL = Provider(
    "retell", "X-Retell-Signature", verify_retell, sign_retell, RETELL_TOLERANCE_MS // 1000, True
)
CALCOM = Provider("calcom", "X-Cal-Signature-256", verify_calcom, sign_calcom, None, False)
PROVIDERS = [STRIPE, RETELL, CALCOM]
TIMED = [STRIPE, RETELL]

every_provider = pytest.mark.parametrize("provider", PROVIDERS, ids=lambda p: p.name)
timed_providers = pytest.mark.parametrize("provider", TIMED, ids=lambda p: p.name)


# --- strategies -------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
json_bodies = json_values.map(lambda v: json.dumps(v, ensure_ascii=False).encode())
text_bodies = st.text(max_size=300).map(str.encode)
binary_bodies = st.binary(max_size=300)
bodies = st.one_of(json_bodies, text_bodies)  # what providers send: UTF-8 text
any_bodies = st.one_of(json_bodies, text_bodies, binary_bodies)

secrets = st.one_of(
    st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=16).map(
        lambda s: "whsec_" + s
    ),
    st.text(min_size=1, max_size=40).filter(lambda s: s.strip() != ""),
)
# Characters for header edits: near misses first (digits, hex, separators), then any.
header_chars = st.one_of(st.sampled_from("0123456789abcdefABCDEF,=tvd ;_-+"), st.characters())


def _now() -> int:
    return int(time.time())


def fresh_offsets(provider: Provider) -> st.SearchStrategy[int]:
    limit = (provider.tolerance_s or 600) - MARGIN_S
    return st.integers(-limit, limit)


def assert_rejected(provider: Provider, body: bytes, header: str | None, secret: str) -> None:
    headers = {} if header is None else provider.headers(header)
    with pytest.raises(SignatureRejected):
        provider.verify(body, headers, secret)


# --- a correctly signed delivery verifies -----------------------------------------------


@every_provider
@PROPERTY
@given(body=bodies, secret=secrets, data=st.data())
def test_a_signed_delivery_verifies(
    provider: Provider, body: bytes, secret: str, data: st.DataObject
) -> None:
    header = provider.sign(body, secret, _now() + data.draw(fresh_offsets(provider)))
    provider.verify(body, provider.headers(header), secret)  # no exception


@every_provider
@PROPERTY
@given(body=binary_bodies, secret=secrets)
def test_binary_bodies_verify_or_are_refused_cleanly(
    provider: Provider, body: bytes, secret: str
) -> None:
    """Stripe and Retell sign text: a body that isn't UTF-8 can't come from them."""
    header = provider.sign(body, secret, _now())
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        if provider.text_only:
            assert_rejected(provider, body, header, secret)
            return
    provider.verify(body, provider.headers(header), secret)


@PROPERTY
@given(body=bodies, secret=secrets)
def test_these_signers_agree_with_the_providers_own(body: bytes, secret: str) -> None:
    now = _now()
    assert sign_stripe(body, secret, now) == stripe_header(body, secret, now)
    assert sign_retell(body, secret, now) == retell_header(body, secret, now * 1000)
    assert sign_calcom(body, secret, now) == calcom_header(body, secret)


# --- any change to the body -------------------------------------------------------------


@st.composite
def changed(draw: Any, original: bytes) -> bytes:
    """``original`` with one byte flipped, inserted or deleted."""
    edits = ["flip", "insert"] + (["delete"] if original else [])
    edit = draw(st.sampled_from(edits))
    if edit == "insert":
        at = draw(st.integers(0, len(original)))
        return original[:at] + bytes([draw(st.integers(0, 255))]) + original[at:]
    at = draw(st.integers(0, len(original) - 1)) if original else 0
    if edit == "delete":
        return original[:at] + original[at + 1 :]
    if not original:
        return bytes([draw(st.integers(0, 255))])
    bit = 1 << draw(st.integers(0, 7))
    return original[:at] + bytes([original[at] ^ bit]) + original[at + 1 :]


@every_provider
@PROPERTY
@given(body=any_bodies, secret=secrets, data=st.data())
def test_any_change_to_the_body_is_rejected(
    provider: Provider, body: bytes, secret: str, data: st.DataObject
) -> None:
    header = provider.sign(body, secret, _now())
    tampered = data.draw(changed(body))
    assert tampered != body
    assert_rejected(provider, tampered, header, secret)


# --- any change to the signature header -------------------------------------------------


@st.composite
def changed_header(draw: Any, original: str) -> str:
    """``original`` with one character changed, inserted or deleted, truncated, with
    something appended, or one ``key=value`` element respelled."""
    edit = draw(st.sampled_from(["change", "insert", "delete", "truncate", "append", "respell"]))
    at = draw(st.integers(0, len(original) - 1))
    if edit == "change":
        new = draw(header_chars.filter(lambda c: c != original[at]))
        return original[:at] + new + original[at + 1 :]
    if edit == "insert":
        return original[:at] + draw(header_chars) + original[at:]
    if edit == "delete":
        return original[:at] + original[at + 1 :]
    if edit == "truncate":
        return original[:at]
    if edit == "append":
        return original + draw(st.text(header_chars, min_size=1, max_size=8))
    elements = original.split(",")
    index = draw(st.integers(0, len(elements) - 1))
    elements[index] = draw(respelled(elements[index]))
    return ",".join(elements)


ARABIC_INDIC_DIGITS = str.maketrans("0123456789", "".join(chr(0x0660 + d) for d in range(10)))
FULLWIDTH_DIGITS = str.maketrans("0123456789", "".join(chr(0xFF10 + d) for d in range(10)))
# Same number, other spelling: what ``int()`` reads alike (leading zero, sign, space,
# underscore, non-ASCII digits); and characters around a value.
NUMBER_RESPELLINGS = [
    lambda v: "0" + v,
    lambda v: "+" + v,
    lambda v: " " + v,
    lambda v: v + " ",
    lambda v: v[:1] + "_" + v[1:],
    lambda v: v.translate(ARABIC_INDIC_DIGITS),
    lambda v: v.translate(FULLWIDTH_DIGITS),
]


@st.composite
def respelled(draw: Any, element: str) -> str:
    key, _, value = element.partition("=")
    if not value:  # Cal.com's header is a bare value
        key, value = "", key
    how = draw(st.sampled_from(["number", "suffix", "prefix", "case", "key"]))
    if how == "number" and value.isdigit() and len(value) > 1:
        value = draw(st.sampled_from(NUMBER_RESPELLINGS))(value)
    elif how == "suffix" or how == "number":
        value += draw(st.sampled_from(["=", "=x", ";", " ", "\t", "\x80", "é", ","]))
    elif how == "prefix":
        value = draw(st.sampled_from(["=", " ", "é", "\x00"])) + value
    elif how == "case" and value.upper() != value:
        value = value.upper()
    else:
        key = draw(st.sampled_from(["", "T", " t", "v2", "V1", "d ", "v0", key + key]))
    return f"{key}={value}" if key else value


@every_provider
@PROPERTY
@given(body=bodies, secret=secrets, data=st.data())
def test_any_change_to_the_signature_header_is_rejected(
    provider: Provider, body: bytes, secret: str, data: st.DataObject
) -> None:
    header = provider.sign(body, secret, _now())
    tampered = data.draw(changed_header(header))
    assert tampered != header
    assert_rejected(provider, body, tampered, secret)


made_up_headers = st.one_of(
    st.text(header_chars, max_size=120),
    st.lists(
        st.tuples(
            st.sampled_from(["t", "v1", "v0", "v", "d", ""]),
            st.one_of(st.text(header_chars, max_size=70), st.integers(0, 10**14).map(str)),
        ),
        min_size=1,
        max_size=4,
    ).map(lambda pairs: ",".join(f"{k}={v}" if k else v for k, v in pairs)),
)


@every_provider
@PROPERTY
@given(body=bodies, secret=secrets, header=made_up_headers)
def test_a_made_up_header_is_rejected(
    provider: Provider, body: bytes, secret: str, header: str
) -> None:
    assert_rejected(provider, body, header, secret)


@every_provider
@PROPERTY
@given(body=bodies, secret=secrets)
def test_a_missing_header_is_rejected(provider: Provider, body: bytes, secret: str) -> None:
    assert_rejected(provider, body, None, secret)
    assert_rejected(provider, body, "", secret)


# --- the timestamp ----------------------------------------------------------------------


def _with_timestamp(provider: Provider, header: str, timestamp: int) -> str:
    """``header`` with its timestamp replaced, the signature kept."""
    stamp, rest = header.split(",", 1)
    key = stamp.split("=", 1)[0]
    return f"{key}={timestamp},{rest}"


@timed_providers
@PROPERTY
@given(
    body=bodies,
    secret=secrets,
    shift=st.integers(-10_000, 10_000).filter(lambda n: n != 0),  # also still fresh
    absolute=st.none() | st.integers(0, 10**15),
)
def test_any_other_timestamp_is_rejected(
    provider: Provider, body: bytes, secret: str, shift: int, absolute: int | None
) -> None:
    header = provider.sign(body, secret, _now())
    signed = int(header.split(",", 1)[0].split("=", 1)[1])
    other = signed + shift if absolute is None or absolute == signed else absolute
    assert_rejected(provider, body, _with_timestamp(provider, header, other), secret)


@timed_providers
@PROPERTY
@given(
    body=bodies,
    secret=secrets,
    late=st.booleans(),
    beyond=st.integers(MARGIN_S, 10**9),  # seconds past the tolerance
)
def test_stale_and_future_deliveries_are_rejected(
    provider: Provider, body: bytes, secret: str, late: bool, beyond: int
) -> None:
    """Correctly signed, but outside the tolerance: too old (a replay) or too far ahead."""
    assert provider.tolerance_s is not None
    offset = provider.tolerance_s + beyond
    header = provider.sign(body, secret, _now() + (offset if late else -offset))
    assert_rejected(provider, body, header, secret)


# --- the secret -------------------------------------------------------------------------


@every_provider
@PROPERTY
@given(body=bodies, secret=secrets, other=secrets)
def test_another_secret_is_rejected(
    provider: Provider, body: bytes, secret: str, other: str
) -> None:
    if other == secret:
        other += "x"
    header = provider.sign(body, other, _now())
    assert_rejected(provider, body, header, secret)


@every_provider
@PROPERTY
@given(body=bodies, blank=st.sampled_from(["", " ", "\t", "\n "]))
def test_a_blank_secret_verifies_nothing(provider: Provider, body: bytes, blank: str) -> None:
    """An endpoint whose secret was never set must not accept deliveries signed with
    that same blank key — anyone can compute those."""
    header = provider.sign(body, blank, _now())
    assert_rejected(provider, body, header, blank)


@PROPERTY
@given(body=bodies, secret=secrets, old=secrets)
def test_stripe_accepts_any_matching_v1_during_secret_rotation(
    body: bytes, secret: str, old: str
) -> None:
    now = _now()
    current = sign_stripe(body, secret, now).split(",v1=")[1]
    previous = sign_stripe(body, old, now).split(",v1=")[1]
    for header in (f"t={now},v1={previous},v1={current}", f"t={now},v1={current},v1={previous}"):
        verify_stripe(body, {"Stripe-Signature": header}, secret)
