"""Shared fixtures: two companies with personas (owner, staff, outsider), clients."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.core.cache import caches
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tenants.context import tenant_context
from tenants.models import Company, Role
from tests.factories import TENANT_FACTORIES, CompanyFactory, MembershipFactory, UserFactory


@pytest.fixture(scope="session")
def django_db_setup(
    request: pytest.FixtureRequest,
    django_test_environment: None,
    django_db_blocker: Any,
    django_db_modify_db_settings: None,
) -> Any:
    """Create and migrate the test database as the owner; run the suite as the app role.

    The app role can't create databases and owns no table, so row-level security binds
    it exactly as in production (PITFALLS.md, Row-level security).
    """
    from django.test.utils import setup_databases, teardown_databases

    from tenants.db.roles import as_owner

    with django_db_blocker.unblock(), as_owner():
        # Nothing is serialized for rollback: tenant rows can't be read without a tenant.
        config = setup_databases(
            verbosity=request.config.option.verbose,
            interactive=False,
            aliases={"default"},
            serialized_aliases=set(),
        )
    yield
    with django_db_blocker.unblock(), as_owner():
        teardown_databases(config, verbosity=request.config.option.verbose)


@pytest.fixture(scope="session", autouse=True)
def _redis_database_per_worker(request: pytest.FixtureRequest) -> Any:
    """cache.clear() flushes a whole Redis database: give each xdist worker its own.

    Settings are imported before xdist names the worker, so this can't live there.
    """
    from django.conf import settings
    from django.test.utils import override_settings

    worker_id = getattr(request.config, "workerinput", {}).get("workerid", "master")
    if worker_id == "master" or not settings.REDIS_URL:
        yield
        return
    number = 14 - int(worker_id.removeprefix("gw"))
    url = settings.REDIS_URL.rsplit("/", 1)[0] + f"/{number}"
    caches_for_worker = {
        alias: {**config, "LOCATION": url} for alias, config in settings.CACHES.items()
    }
    with override_settings(CACHES=caches_for_worker, REDIS_URL=url):
        yield


@pytest.fixture(autouse=True)
def _clear_caches() -> None:
    from webhooks.endpoints import forget_endpoints

    for alias in ("default", "sessions"):
        caches[alias].clear()
    forget_endpoints()  # the web's in-process copies of resolved endpoints


@dataclass
class World:
    """Two companies, each with one row of every tenant model, and the people."""

    a: Company
    b: Company
    rows: dict[str, dict[type, Any]]
    owner_a: Any
    staff_a: Any
    outsider: Any  # owner of company b, a member of nothing in a


def _fill(company: Company) -> dict[type, Any]:
    """One row per tenant model; foreign keys point at the rows made before them."""
    rows: dict[type, Any] = {}
    with tenant_context(company):
        for model, factory in TENANT_FACTORIES.items():
            related = {
                field.name: rows[field.related_model]
                for field in model._meta.concrete_fields
                if field.many_to_one and field.related_model in rows
            }
            rows[model] = factory(**related)
    return rows


@pytest.fixture
def world(db: Any) -> World:
    a = CompanyFactory(slug="alpha", name="Alpha Salon")
    b = CompanyFactory(slug="beta", name="Beta Workshop")
    owner_a = MembershipFactory(company=a, role=Role.OWNER, user__username="owner_a").user
    staff_a = MembershipFactory(company=a, role=Role.STAFF, user__username="staff_a").user
    outsider = MembershipFactory(company=b, role=Role.OWNER, user__username="outsider").user
    return World(
        a=a,
        b=b,
        rows={"a": _fill(a), "b": _fill(b)},
        owner_a=owner_a,
        staff_a=staff_a,
        outsider=outsider,
    )


def login(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def token_client(user: Any, company_slug: str | None = None) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    if company_slug:
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}", HTTP_X_COMPANY=company_slug)
    return client


@pytest.fixture
def superuser(db: Any) -> Any:
    return UserFactory(username="root", is_superuser=True)


@dataclass
class Salon:
    """Company a's bookable setup: one branch in Berlin, one 30-minute service, two staff
    working every day 09:00-17:00, and a known customer."""

    company: Company
    branch: Any
    service: Any
    staff: Any
    other_staff: Any
    customer: Any
    day: date  # a day at least two days ahead

    def at(self, hour: int, minute: int = 0, day: date | None = None) -> datetime:
        """An aware datetime at local wall time ``hour:minute`` on ``day`` in Berlin."""
        return datetime.combine(day or self.day, time(hour, minute), tzinfo=BERLIN)


BERLIN = ZoneInfo("Europe/Berlin")


def make_salon(company: Company) -> Salon:
    from tests.factories import (
        BranchFactory,
        CustomerFactory,
        ServiceFactory,
        StaffMemberFactory,
        StaffServiceFactory,
        WorkingHoursFactory,
    )

    with tenant_context(company):
        branch = BranchFactory(name="Mitte", timezone="Europe/Berlin", country="DE")
        service = ServiceFactory(name="Cut", duration_minutes=30, slot_interval_minutes=30)
        staff = [StaffMemberFactory(branch=branch, name=n) for n in ("Anna", "Jonas")]
        for member in staff:
            StaffServiceFactory(staff=member, service=service)
            for weekday in range(7):
                WorkingHoursFactory(staff=member, weekday=weekday, start=time(9), end=time(17))
        customer = CustomerFactory(name="Erika Muster", phone="+4915112345678")
    return Salon(
        company=company,
        branch=branch,
        service=service,
        staff=staff[0],
        other_staff=staff[1],
        customer=customer,
        day=timezone.localdate() + timedelta(days=3),
    )


@pytest.fixture
def salon(world: World) -> Salon:
    return make_salon(world.a)


# --- the provider simulator -------------------------------------------------------------


@pytest.fixture(scope="session")
def simulator() -> Any:
    """One provider simulator per test process (reset by `providers` before each test)."""
    from integrations.simulator import ProviderSimulator

    with ProviderSimulator() as sim:
        yield sim


@pytest.fixture
def providers(simulator: Any, settings: Any) -> Any:
    """The simulator, reset, with every ``*_API_BASE`` pointing at it and fresh breakers."""
    from integrations.breakers import reset_stores

    simulator.reset()
    settings.CALCOM_API_BASE = simulator.base("calcom") + "/v2"
    settings.RETELL_API_BASE = simulator.base("retell")
    settings.STRIPE_API_BASE = simulator.base("stripe")
    reset_stores()
    yield simulator
    reset_stores()


def seed_event_type(sim: Any, event_type_id: int, title: str) -> None:
    """A 30-minute Cal.com event type, as if made in Cal.com."""
    with sim.lock:
        sim.state["calcom"]["event_types"][event_type_id] = {
            "id": event_type_id,
            "title": title,
            "slug": title.lower(),
            "lengthInMinutes": 30,
        }
