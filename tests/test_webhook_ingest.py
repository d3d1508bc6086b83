"""Webhook ingestion: verified, de-duplicated, stored before it is acknowledged."""

from __future__ import annotations

import json
import time
from typing import Any
from unittest import mock

import pytest
from django.db import DatabaseError
from django.test import Client

from tenants.context import all_tenants, tenant_context
from tests import signing
from tests.conftest import World
from tests.factories import WebhookEndpointFactory
from webhooks.models import WebhookEndpoint, WebhookEvent

SECRETS = {"stripe": "whsec_alpha_test", "retell": "key_alpha_retell", "calcom": "cal_alpha"}
FIXTURES = {
    "stripe": "stripe/payment_intent.succeeded",
    "retell": "retell/call_ended",
    "calcom": "calcom/BOOKING_CREATED",
}


@pytest.fixture
def endpoints(world: World) -> dict[str, WebhookEndpoint]:
    with tenant_context(world.a):
        WebhookEndpoint.objects.all().delete()
        return {
            provider: WebhookEndpointFactory(provider=provider, secret=SECRETS[provider])
            for provider in SECRETS
        }


def body_of(provider: str, **changes: Any) -> bytes:
    payload = signing.fixture(FIXTURES[provider])
    payload.update(changes)
    return json.dumps(payload).encode()


def deliver(
    endpoint: WebhookEndpoint,
    body: bytes,
    headers: dict[str, str] | None = None,
    secret: str | None = None,
) -> Any:
    if headers is None:
        headers = signing.signed_headers(
            endpoint.provider, body, secret or SECRETS[endpoint.provider]
        )
    return Client().post(endpoint.path, body, content_type="application/json", **headers)


def stored(endpoint: WebhookEndpoint) -> int:
    with all_tenants("test: count stored events"):
        return WebhookEvent.objects.filter(endpoint_id=endpoint.pk).count()


@pytest.mark.parametrize("provider", list(SECRETS))
def test_a_signed_delivery_is_accepted_and_stored(endpoints: Any, provider: str) -> None:
    endpoint = endpoints[provider]
    response = deliver(endpoint, body_of(provider))
    assert response.status_code == 202
    assert response.json() == {"status": "accepted"}
    assert stored(endpoint) == 1
    with all_tenants("test"):
        event = WebhookEvent.objects.get(endpoint_id=endpoint.pk)
    assert event.company_id == endpoint.company_id
    assert event.payload == json.loads(body_of(provider))


@pytest.mark.parametrize("provider", list(SECRETS))
def test_the_same_delivery_twice_is_a_duplicate(endpoints: Any, provider: str) -> None:
    endpoint = endpoints[provider]
    assert deliver(endpoint, body_of(provider)).status_code == 202
    again = deliver(endpoint, body_of(provider))
    assert again.status_code == 200
    assert again.json() == {"status": "duplicate"}
    assert stored(endpoint) == 1


def test_a_duplicate_is_caught_by_the_database_when_redis_forgot(endpoints: Any) -> None:
    from django.core.cache import cache

    endpoint = endpoints["stripe"]
    deliver(endpoint, body_of("stripe"))
    cache.clear()
    assert deliver(endpoint, body_of("stripe")).json() == {"status": "duplicate"}
    assert stored(endpoint) == 1


def test_the_dedup_keys_follow_each_providers_identity(endpoints: Any) -> None:
    deliver(endpoints["stripe"], body_of("stripe"))
    deliver(endpoints["retell"], body_of("retell"))
    deliver(endpoints["calcom"], body_of("calcom"))
    with all_tenants("test"):
        keys = dict(WebhookEvent.objects.values_list("provider", "dedup_key"))
    assert keys["stripe"] == "evt_3SWdemoAskPro0001"
    assert keys["retell"] == "call_ended:call_4f7e2b9c1d0a8e6f5b3c2a19"
    assert keys["calcom"] == "BOOKING_CREATED:bE3eTq2x9WvQm7N4cLpA1s"


def test_a_calcom_delivery_without_uid_is_keyed_by_its_body(endpoints: Any) -> None:
    endpoint = endpoints["calcom"]
    payload = signing.fixture(FIXTURES["calcom"])
    del payload["payload"]["uid"]
    first = json.dumps(payload).encode()
    payload["createdAt"] = "2025-11-22T10:00:01Z"
    second = json.dumps(payload).encode()
    assert [deliver(endpoint, b).status_code for b in (first, first, second)] == [202, 200, 202]


# --- refusals: a 4xx and nothing stored ------------------------------------------------


def _refusals(
    endpoints: dict[str, WebhookEndpoint],
) -> dict[str, tuple[WebhookEndpoint, bytes, dict[str, str]]]:
    stripe_ep, retell_ep, cal_ep = endpoints["stripe"], endpoints["retell"], endpoints["calcom"]
    sbody, rbody, cbody = body_of("stripe"), body_of("retell"), body_of("calcom")
    now = int(time.time())
    good_sig = signing.stripe_header(sbody, SECRETS["stripe"]).split("v1=")[1]
    return {
        "stripe wrong secret": (
            stripe_ep,
            sbody,
            signing.signed_headers("stripe", sbody, "whsec_other"),
        ),
        "stripe tampered body": (
            stripe_ep,
            sbody + b"\n",
            signing.signed_headers("stripe", sbody, SECRETS["stripe"]),
        ),
        "stripe missing header": (stripe_ep, sbody, {}),
        "stripe malformed header": (stripe_ep, sbody, {"HTTP_STRIPE_SIGNATURE": "garbage"}),
        "stripe v0 only": (stripe_ep, sbody, {"HTTP_STRIPE_SIGNATURE": f"t={now},v0={good_sig}"}),
        "stripe stale": (
            stripe_ep,
            sbody,
            {"HTTP_STRIPE_SIGNATURE": signing.stripe_header(sbody, SECRETS["stripe"], now - 600)},
        ),
        "stripe far future": (
            stripe_ep,
            sbody,
            {"HTTP_STRIPE_SIGNATURE": signing.stripe_header(sbody, SECRETS["stripe"], now + 600)},
        ),
        "retell wrong key": (retell_ep, rbody, signing.signed_headers("retell", rbody, "other")),
        "retell stale": (
            retell_ep,
            rbody,
            {
                "HTTP_X_RETELL_SIGNATURE": signing.retell_header(
                    rbody, SECRETS["retell"], (now - 600) * 1000
                )
            },
        ),
        "retell future": (
            retell_ep,
            rbody,
            {
                "HTTP_X_RETELL_SIGNATURE": signing.retell_header(
                    rbody, SECRETS["retell"], (now + 600) * 1000
                )
            },
        ),
        "retell missing": (retell_ep, rbody, {}),
        "retell malformed": (retell_ep, rbody, {"HTTP_X_RETELL_SIGNATURE": "v=1,d=zz"}),
        "calcom wrong secret": (cal_ep, cbody, signing.signed_headers("calcom", cbody, "nope")),
        "calcom tampered": (
            cal_ep,
            cbody + b" ",
            signing.signed_headers("calcom", cbody, SECRETS["calcom"]),
        ),
        "calcom missing": (cal_ep, cbody, {}),
    }


REFUSAL_NAMES = [
    "stripe wrong secret",
    "stripe tampered body",
    "stripe missing header",
    "stripe malformed header",
    "stripe v0 only",
    "stripe stale",
    "stripe far future",
    "retell wrong key",
    "retell stale",
    "retell future",
    "retell missing",
    "retell malformed",
    "calcom wrong secret",
    "calcom tampered",
    "calcom missing",
]


@pytest.mark.parametrize("case", REFUSAL_NAMES)
def test_a_bad_signature_is_401_and_nothing_is_stored(endpoints: Any, case: str) -> None:
    endpoint, body, headers = _refusals(endpoints)[case]
    response = deliver(endpoint, body, headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert stored(endpoint) == 0


def test_another_companys_secret_is_refused(world: World, endpoints: Any) -> None:
    with tenant_context(world.b):
        WebhookEndpoint.objects.all().delete()
        theirs = WebhookEndpointFactory(provider="stripe", secret="whsec_beta")
    body = body_of("stripe")
    response = deliver(endpoints["stripe"], body, secret="whsec_beta")
    assert response.status_code == 401
    assert deliver(theirs, body, secret="whsec_beta").status_code == 202
    assert stored(endpoints["stripe"]) == 0


def test_a_provider_endpoint_mismatch_is_404(endpoints: Any) -> None:
    body = body_of("stripe")
    url = f"/webhooks/calcom/{endpoints['stripe'].pk}/"
    response = Client().post(
        url,
        body,
        content_type="application/json",
        **signing.signed_headers("stripe", body, SECRETS["stripe"]),
    )
    assert response.status_code == 404
    assert stored(endpoints["stripe"]) == 0


@pytest.mark.parametrize(
    "url",
    [
        "/webhooks/stripe/00000000-0000-0000-0000-000000000000/",
        "/webhooks/stripe/not-a-uuid/",
        "/webhooks/paypal/00000000-0000-0000-0000-000000000000/",
    ],
)
def test_unknown_endpoints_are_404(db: Any, url: str) -> None:
    response = Client().post(url, b"{}", content_type="application/json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_an_inactive_endpoint_is_404(endpoints: Any) -> None:
    endpoint = endpoints["stripe"]
    with tenant_context(endpoint.company_id):
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(active=False)
    assert deliver(endpoint, body_of("stripe")).status_code == 404


def test_an_oversized_body_is_413(endpoints: Any, settings: Any) -> None:
    settings.WEBHOOK_MAX_BODY_BYTES = 2048
    body = body_of("stripe", padding="x" * 4096)
    assert deliver(endpoints["stripe"], body).status_code == 413
    assert stored(endpoints["stripe"]) == 0


@pytest.mark.parametrize("body", [b"not json", b"[1, 2, 3]", b'"a string"', b"\xff\xfe"])
def test_a_body_that_is_no_json_object_is_400(endpoints: Any, body: bytes) -> None:
    endpoint = endpoints["calcom"]
    response = deliver(endpoint, body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert stored(endpoint) == 0


def test_a_json_object_that_is_no_event_is_400(endpoints: Any) -> None:
    response = deliver(endpoints["stripe"], json.dumps({"hello": "world"}).encode())
    assert response.status_code == 400
    assert stored(endpoints["stripe"]) == 0


def test_only_post_is_accepted(endpoints: Any) -> None:
    assert Client().get(endpoints["stripe"].path).status_code == 405


def test_too_many_deliveries_are_429_with_retry_after(endpoints: Any, settings: Any) -> None:
    settings.WEBHOOK_THROTTLE = "2/min"
    codes = [
        deliver(endpoints["stripe"], body_of("stripe", id=f"evt_{n}")).status_code for n in range(3)
    ]
    assert codes == [202, 202, 429]
    response = deliver(endpoints["stripe"], body_of("stripe", id="evt_9"))
    assert int(response["Retry-After"]) >= 1
    assert stored(endpoints["stripe"]) == 2


def test_a_database_that_cannot_store_answers_503(endpoints: Any) -> None:
    with mock.patch("webhooks.inbox.store_event", side_effect=DatabaseError("down")):
        response = deliver(endpoints["stripe"], body_of("stripe"))
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"
    assert b"Traceback" not in response.content
    # Nothing was remembered as seen: the provider's retry is stored normally.
    assert deliver(endpoints["stripe"], body_of("stripe")).status_code == 202


def test_a_broker_that_is_down_still_gets_202(endpoints: Any) -> None:
    from kombu.exceptions import OperationalError

    with mock.patch("webhooks.tasks.drain_inbox.delay", side_effect=OperationalError("no broker")):
        response = deliver(endpoints["stripe"], body_of("stripe"))
    assert response.status_code == 202
    with all_tenants("test"):
        event = WebhookEvent.objects.get(endpoint_id=endpoints["stripe"].pk)
    assert event.status == "received"  # the sweeper will queue it


def test_the_admin_never_shows_a_secret_but_can_replace_it(world: World, endpoints: Any) -> None:
    from django.urls import reverse

    from tests.conftest import login

    endpoint = endpoints["stripe"]
    url = reverse("admin:webhooks_webhookendpoint_change", args=[endpoint.pk])
    client = login(world.owner_a)
    page = client.get(url).content.decode()
    assert SECRETS["stripe"] not in page
    client.post(url, {"provider": "stripe", "secret": "", "active": "on"})
    with tenant_context(world.a):
        assert WebhookEndpoint.objects.get(pk=endpoint.pk).secret == SECRETS["stripe"]
    client.post(url, {"provider": "stripe", "secret": "whsec_rotated", "active": "on"})
    with tenant_context(world.a):
        assert WebhookEndpoint.objects.get(pk=endpoint.pk).secret == "whsec_rotated"


def test_secrets_are_ciphertext_in_the_database(endpoints: Any) -> None:
    from django.db import connection

    with all_tenants("test: raw read"), connection.cursor() as cursor:
        cursor.execute(
            "SELECT secret FROM webhooks_webhookendpoint WHERE id = %s",
            [
                endpoints["stripe"].pk
                if connection.vendor == "postgresql"
                else endpoints["stripe"].pk.hex
            ],
        )
        (stored_secret,) = cursor.fetchone()
    assert SECRETS["stripe"] not in stored_secret
    assert stored_secret.startswith("gAAAA")  # a Fernet token
