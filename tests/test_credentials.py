"""Provider credentials: encrypted at rest, readable under a key ring, rotated by command."""

from __future__ import annotations

from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from integrations.credentials import connect, credentials_for, remember_remote
from integrations.models import Integration
from tenants.context import all_tenants, tenant_context
from tests.conftest import World
from webhooks.models import WebhookEndpoint

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def raw(table: str, column: str) -> list[str]:
    """What the database holds, bypassing the ORM: a raw SELECT over every company's rows."""
    with all_tenants("test: raw read of secrets"), connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE {column} <> ''")  # noqa: S608
        return [row[0] for row in cursor.fetchall()]


@pytest.fixture(autouse=True)
def _old_key() -> Iterator[None]:
    """Everything, the world included, starts out encrypted under OLD."""
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD]):
        yield


@pytest.fixture
def secrets(world: World) -> dict[str, str]:
    with tenant_context(world.a):
        connect("calcom", "cal_live_a_secret")
        connect("stripe", "sk_live_a_secret", account="acct_123")
        endpoint = WebhookEndpoint.objects.get(provider="stripe")
        endpoint.secret = "whsec_a_secret"
        endpoint.save()
    return {"calcom": "cal_live_a_secret", "stripe": "sk_live_a_secret"}


def test_a_raw_select_shows_only_ciphertext(secrets: dict[str, str]) -> None:
    keys = raw("integrations_integration", "api_key")
    assert keys
    assert not any("secret" in value for value in keys)
    assert all(value.startswith("gAAAA") for value in keys)  # Fernet tokens
    assert not any("whsec_a_secret" in v for v in raw("webhooks_webhookendpoint", "secret"))


def test_credentials_are_read_for_the_bound_company_only(world: World, secrets: Any) -> None:
    with tenant_context(world.a):
        stripe = credentials_for("stripe")
        assert stripe is not None
        assert (stripe.api_key, stripe.account) == ("sk_live_a_secret", "acct_123")
        assert credentials_for("retell") is None
    with tenant_context(world.b):
        assert credentials_for("stripe") is None


def test_remote_ids_are_merged(world: World) -> None:
    with tenant_context(world.a):
        connect("calcom", "cal_x")
        remember_remote("calcom", webhook_id=7)
        remember_remote("calcom", other="y")
        assert Integration.objects.get(provider="calcom").remote == {"webhook_id": 7, "other": "y"}
        assert credentials_for("calcom").api_key == "cal_x"


def test_a_new_key_in_front_keeps_everything_readable_and_rotate_keys_drops_the_old(
    world: World, secrets: dict[str, str]
) -> None:
    before = set(raw("integrations_integration", "api_key"))
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW, OLD]), tenant_context(world.a):
        assert credentials_for("calcom").api_key == secrets["calcom"]
        out = StringIO()
        call_command("rotate_keys", "--json", stdout=out)
    assert '"integrations.Integration": ' in out.getvalue()
    after = set(raw("integrations_integration", "api_key"))
    assert before.isdisjoint(after)
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW]), tenant_context(world.a):
        assert credentials_for("calcom").api_key == secrets["calcom"]
        assert credentials_for("stripe").api_key == secrets["stripe"]
        assert WebhookEndpoint.objects.get(provider="stripe").secret == "whsec_a_secret"
    # Every row of every company, not only one tenant's.
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW]), tenant_context(world.b):
        assert [e.secret for e in WebhookEndpoint.objects.all()]


def test_connect_provider_reads_the_key_from_stdin(world: World, monkeypatch: Any) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("cal_live_from_stdin\n"))
    out = StringIO()
    call_command("connect_provider", "--company", world.a.slug, "--provider", "calcom", stdout=out)
    assert "calcom connected (key ends …tdin)" in out.getvalue()
    assert "cal_live_from_stdin" not in out.getvalue()
    with tenant_context(world.a):
        assert credentials_for("calcom").api_key == "cal_live_from_stdin"


def test_the_admin_stores_a_key_but_never_shows_it(world: World) -> None:
    from django.urls import reverse

    from tests.conftest import login

    client = login(world.owner_a)
    with tenant_context(world.a):
        row = Integration.objects.get(provider="calcom")
    url = reverse("admin:integrations_integration_change", args=[row.pk])
    form = {"provider": "calcom", "api_key": "cal_live_typed_in", "account": ""}
    assert client.post(url, form).status_code == 302
    with tenant_context(world.a):
        assert credentials_for("calcom").api_key == "cal_live_typed_in"
    assert "cal_live_typed_in" not in client.get(url).content.decode()
    # Saving again with the field left empty keeps the key.
    assert client.post(url, {**form, "api_key": ""}).status_code == 302
    with tenant_context(world.a):
        assert credentials_for("calcom").api_key == "cal_live_typed_in"
