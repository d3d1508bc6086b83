"""Where the tenant gets bound: DRF for tokens, Celery tasks by id, commands by slug."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from askpro.celery import app
from tenants.cache import tenant_key
from tenants.context import TenantNotSet, tenant_context
from tenants.models import Branch, Role
from tenants.tasks import TenantTask, UnscopedTask
from tests.conftest import token_client
from tests.factories import MembershipFactory


@app.task(base=TenantTask, name="tests.count_branches")
def count_branches(*, company_id: int) -> list[int]:
    return list(Branch.objects.values_list("company_id", flat=True))


@app.task(base=UnscopedTask, name="tests.count_branches_unscoped")
def count_branches_unscoped() -> int:
    return Branch.objects.count()


# --- API (token users are known only inside DRF) -------------------------------------


def test_a_token_user_acts_for_their_company(world: Any) -> None:
    response = token_client(world.owner_a).get("/api/v1/me/")
    assert response.status_code == 200
    assert response.json()["company"]["slug"] == "alpha"
    assert response.json()["role"] == Role.OWNER


def test_another_companys_slug_is_a_404_with_the_error_body(world: Any) -> None:
    response = token_client(world.owner_a, company_slug="beta").get("/api/v1/me/")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "No such company."}}


def test_a_user_of_two_companies_must_name_one(world: Any) -> None:
    MembershipFactory(user=world.owner_a, company=world.b, role=Role.STAFF)
    ambiguous = token_client(world.owner_a).get("/api/v1/me/")
    assert ambiguous.status_code == 400
    assert ambiguous.json()["error"]["code"] == "validation_error"
    assert "X-Company" in ambiguous.json()["error"]["fields"]
    chosen = token_client(world.owner_a, company_slug="beta").get("/api/v1/me/")
    assert chosen.json()["company"]["slug"] == "beta"
    assert chosen.json()["role"] == Role.STAFF


def test_no_credentials_is_a_401_with_the_error_body(world: Any) -> None:
    response = APIClient().get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_a_bad_token_is_a_401(world: Any) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert client.get("/api/v1/me/").status_code == 401


def test_session_users_are_bound_by_the_api_too(world: Any) -> None:
    client = APIClient()
    client.force_login(world.staff_a)
    assert client.get("/api/v1/me/").json()["company"]["slug"] == "alpha"


def test_the_request_leaves_no_tenant_bound(world: Any) -> None:
    token_client(world.owner_a).get("/api/v1/me/")
    with pytest.raises(TenantNotSet):
        Branch.objects.count()


# --- Celery tasks --------------------------------------------------------------------


def test_a_tenant_task_without_company_id_raises(world: Any) -> None:
    with pytest.raises(TenantNotSet):
        count_branches.delay(company_id=None)
    with pytest.raises(TenantNotSet):
        count_branches.apply(kwargs={"company_id": "1"}).get()


def test_a_tenant_task_sees_only_its_company(world: Any) -> None:
    assert count_branches.delay(company_id=world.b.pk).get() == [world.b.pk]


def test_a_task_never_inherits_the_callers_tenant(world: Any) -> None:
    with tenant_context(world.a), pytest.raises(TenantNotSet):
        count_branches_unscoped.delay()
    with tenant_context(world.a), pytest.raises(TenantNotSet):
        count_branches.delay(company_id=None)


def test_unscoped_is_the_apps_default_task_class() -> None:
    assert issubclass(app.Task, UnscopedTask)


# --- Management commands -------------------------------------------------------------


def test_a_company_command_without_company_raises(world: Any) -> None:
    with pytest.raises(TenantNotSet):
        call_command("company_report", stdout=StringIO())


def test_a_company_command_with_an_unknown_slug_fails_cleanly(world: Any) -> None:
    with pytest.raises(CommandError, match="No company"):
        call_command("company_report", "--company", "nope", stdout=StringIO())


def test_a_company_command_counts_only_its_company(world: Any) -> None:
    with tenant_context(world.b):
        Branch.objects.create(name="Second branch of beta")
    out = StringIO()
    call_command("company_report", "--company", "beta", "--json", stdout=out)
    report = json.loads(out.getvalue())
    assert report["counts"]["tenants.Branch"] == 2
    out = StringIO()
    call_command("company_report", "--company", "alpha", "--json", stdout=out)
    assert json.loads(out.getvalue())["counts"]["tenants.Branch"] == 1


# --- Cache keys ----------------------------------------------------------------------


def test_cache_keys_carry_the_tenant(world: Any) -> None:
    with tenant_context(world.a):
        key_a = tenant_key("availability", 7)
    with tenant_context(world.b):
        key_b = tenant_key("availability", 7)
    assert key_a != key_b
    assert key_a == f"t{world.a.pk}:availability:7"
    with pytest.raises(TenantNotSet):
        tenant_key("availability", 7)


def test_each_declared_queue_has_its_own_routing_key() -> None:
    """A task must land in exactly one queue (defaults would bind all to "default")."""
    keys = [(q.name, q.exchange.name, q.routing_key) for q in app.conf.task_queues]
    assert keys == [(name, name, name) for name, _, _ in keys]
    assert len(keys) == 5
