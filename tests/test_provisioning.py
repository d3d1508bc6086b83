"""Onboarding against the provider simulator: agents, webhooks, new companies."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import time
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from bookings.models import Service
from integrations.credentials import connect
from integrations.models import Integration
from integrations.simulator import ProviderSimulator, sign_calcom
from tenants.context import tenant_context
from tenants.models import Branch, Company, Membership
from tests.factories import (
    CompanyFactory,
    ServiceFactory,
    StaffMemberFactory,
    StaffServiceFactory,
    WorkingHoursFactory,
)
from webhooks.models import WebhookEndpoint
from webhooks.verifiers import verify_calcom

PUBLIC = "https://askpro.example"
KEY_A = "key_alpha_0123456789abcdef"
KEY_B = "key_beta_0123456789abcdef"
FUNCTIONS = [
    "find_customer",
    "list_my_appointments",
    "check_availability",
    "book_appointment",
    "cancel_appointment",
    "reschedule_appointment",
]


@pytest.fixture
def sim(providers: ProviderSimulator, settings: Any) -> ProviderSimulator:
    settings.PUBLIC_BASE_URL = PUBLIC
    return providers


@dataclass
class Shop:
    company: Company
    branch: Branch


def make_shop(slug: str, country: str, zone: str, phone: str, key: str | None) -> Shop:
    company = CompanyFactory(slug=slug, name=f"{slug.title()} Salon", country=country)
    with tenant_context(company):
        branch = Branch.objects.create(name="Mitte", phone=phone, timezone=zone, country=country)
        cut = ServiceFactory(name="Haircut", duration_minutes=30, price=Decimal("35.00"))
        colour = ServiceFactory(name="Colouring", duration_minutes=90, price=Decimal("95"))
        anna = StaffMemberFactory(branch=branch, name="Anna")
        for service in (cut, colour):
            StaffServiceFactory(staff=anna, service=service)
        for weekday in range(5):
            WorkingHoursFactory(staff=anna, weekday=weekday, start=time(9), end=time(17))
        WorkingHoursFactory(staff=anna, weekday=5, start=time(10), end=time(14))
        if key:
            connect("retell", key)
    return Shop(company, branch)


@pytest.fixture
def alpha(db: Any) -> Shop:
    return make_shop("alpha", "DE", "Europe/Berlin", "+49301234567", KEY_A)


@pytest.fixture
def beta(db: Any) -> Shop:
    return make_shop("beta", "US", "America/New_York", "+12125550123", KEY_B)


def run(*args: Any) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def provision(shop: Shop, *extra: str) -> str:
    return run("provision_agent", "--branch", str(shop.branch.pk), *extra)


def reload(shop: Shop) -> Branch:
    with tenant_context(shop.company):
        return Branch.objects.get(pk=shop.branch.pk)


def retell_endpoint(shop: Shop) -> WebhookEndpoint:
    with tenant_context(shop.company):
        return WebhookEndpoint.objects.get(provider="retell")


def writes(sim: ProviderSimulator, provider: str = "retell") -> list[str]:
    """What was sent that changes state: method and path, without list calls."""
    return [
        f"{r['method']} {r['path'].split('/')[1]}"
        for r in sim.requests(provider)
        if r["method"] in ("POST", "PATCH", "DELETE") and "list" not in r["path"]
    ]


# -- the agent ---------------------------------------------------------------------------
def test_provisioning_twice_makes_one_llm_and_agent_and_then_updates_them(
    sim: ProviderSimulator, alpha: Shop
) -> None:
    provision(alpha)
    provision(alpha)

    retell = sim.state["retell"]
    assert len(retell["llms"]) == 1
    assert len(retell["agents"]) == 1
    assert list(retell["phone_numbers"]) == ["+49301234567"]
    assert writes(sim) == [
        "POST create-retell-llm",
        "POST create-agent",
        "POST import-phone-number",
        "PATCH update-retell-llm",
        "PATCH update-agent",
        "PATCH update-phone-number",
    ]
    branch = reload(alpha)
    llm = retell["llms"][branch.retell_llm_id]
    agent = retell["agents"][branch.retell_agent_id]
    assert (llm["version"], agent["version"]) == (1, 1)
    assert branch.agent_provisioned_at is not None
    assert branch.agent_provision_error == ""


def test_the_agent_gets_the_six_functions_with_their_urls_and_arguments(
    sim: ProviderSimulator, alpha: Shop
) -> None:
    provision(alpha)

    llm = sim.state["retell"]["llms"][reload(alpha).retell_llm_id]
    tools = {tool["name"]: tool for tool in llm["general_tools"]}
    assert list(tools) == [*FUNCTIONS, "transfer_to_branch", "end_call"]
    endpoint = retell_endpoint(alpha)
    for name in FUNCTIONS:
        assert tools[name]["type"] == "custom"
        assert tools[name]["url"] == f"{PUBLIC}/webhooks/retell/{endpoint.pk}/functions/{name}/"
        assert tools[name]["parameters"]["type"] == "object"
        assert tools[name]["args_at_root"] is False
    arguments = {
        name: (
            sorted(tools[name]["parameters"]["properties"]),
            tools[name]["parameters"].get("required", []),
        )
        for name in FUNCTIONS
    }
    assert arguments == {
        "find_customer": ([], []),
        "list_my_appointments": ([], []),
        "check_availability": (["date", "date_to", "service", "staff"], ["service"]),
        "book_appointment": (["name", "service", "staff", "start"], ["service", "start", "name"]),
        "cancel_appointment": (["appointment", "confirm_name"], ["confirm_name"]),
        "reschedule_appointment": (
            ["appointment", "confirm_name", "start"],
            ["start", "confirm_name"],
        ),
    }
    transfer = tools["transfer_to_branch"]
    assert transfer["type"] == "transfer_call"
    assert transfer["transfer_destination"] == {"type": "predefined", "number": "+49301234567"}
    assert tools["end_call"]["type"] == "end_call"


def test_the_agent_speaks_the_branch_language_and_knows_its_services_and_hours(
    sim: ProviderSimulator, alpha: Shop, beta: Shop
) -> None:
    provision(alpha)
    provision(beta)

    retell = sim.state["retell"]
    german = retell["llms"][reload(alpha).retell_llm_id]
    prompt = german["general_prompt"]
    assert "Haircut (id " in prompt
    assert "30 minutes, 35.00 EUR" in prompt
    assert "Colouring" in prompt
    assert "90 minutes, 95.00 EUR" in prompt
    assert "Monday to Friday: 09:00-17:00" in prompt
    assert "Saturday: 10:00-14:00" in prompt
    assert "Sunday: closed" in prompt
    assert "Speak German" in prompt
    assert "{{current_time_Europe/Berlin}}" in prompt
    assert german["begin_message"].startswith("Guten Tag")
    assert "Mitte" in german["begin_message"]
    assert retell["agents"][reload(alpha).retell_agent_id]["language"] == "de-DE"

    english = retell["llms"][reload(beta).retell_llm_id]
    assert "Speak English" in english["general_prompt"]
    assert english["begin_message"].startswith("Hello")
    assert retell["agents"][reload(beta).retell_agent_id]["language"] == "en-US"


def test_the_agent_posts_to_our_webhook_and_answers_the_branch_number(
    sim: ProviderSimulator, alpha: Shop
) -> None:
    provision(alpha)

    branch, endpoint = reload(alpha), retell_endpoint(alpha)
    agent = sim.state["retell"]["agents"][branch.retell_agent_id]
    assert agent["response_engine"] == {"type": "retell-llm", "llm_id": branch.retell_llm_id}
    assert agent["webhook_url"] == f"{PUBLIC}/webhooks/retell/{endpoint.pk}/"
    assert agent["voice_id"]
    assert agent["agent_name"] == "Alpha Salon - Mitte"
    phone = sim.state["retell"]["phone_numbers"]["+49301234567"]
    assert phone["inbound_agents"] == [{"agent_id": branch.retell_agent_id, "weight": 1}]
    assert phone["inbound_webhook_url"] == f"{PUBLIC}/webhooks/retell/{endpoint.pk}/inbound/"
    assert phone["termination_uri"] == "alpha.pstn.twilio.com"
    assert endpoint.secret == KEY_A  # Retell signs with the company's API key


def test_a_dry_run_prints_the_differences_and_changes_nothing(
    sim: ProviderSimulator, alpha: Shop
) -> None:
    out = provision(alpha, "--dry-run")

    assert writes(sim) == []
    assert "webhook_endpoint create" in " ".join(out.split())
    assert "llm create" in " ".join(out.split())
    assert "agent create" in " ".join(out.split())
    assert "Dry run: nothing was changed." in out
    with tenant_context(alpha.company):
        assert not WebhookEndpoint.objects.exists()
    assert reload(alpha).retell_agent_id is None

    provision(alpha)
    with tenant_context(alpha.company):
        Service.objects.filter(name="Haircut").update(price=Decimal("38.00"))
    sim.clear_requests()
    out = " ".join(provision(alpha, "--dry-run").split())

    assert writes(sim) == []
    assert "llm update" in out
    assert "fields: general_prompt" in out
    assert "agent unchanged" in out
    assert "phone_number unchanged" in out
    assert "35.00 EUR" in sim.state["retell"]["llms"][reload(alpha).retell_llm_id]["general_prompt"]


def test_objects_gone_at_retell_are_made_again(sim: ProviderSimulator, alpha: Shop) -> None:
    provision(alpha)
    with sim.lock:
        sim.state["retell"]["agents"].clear()

    out = " ".join(provision(alpha).split())

    assert "agent created" in out
    assert "llm updated" in out
    agents = sim.state["retell"]["agents"]
    assert list(agents) == [reload(alpha).retell_agent_id]
    phone = sim.state["retell"]["phone_numbers"]["+49301234567"]
    assert phone["inbound_agents"][0]["agent_id"] == reload(alpha).retell_agent_id


# -- tenancy -----------------------------------------------------------------------------
def test_each_company_provisions_with_its_own_key(
    sim: ProviderSimulator, alpha: Shop, beta: Shop
) -> None:
    provision(alpha)
    provision(beta)

    owners = sim.state["retell"]["owners"]
    for shop, key in ((alpha, KEY_A), (beta, KEY_B)):
        branch = reload(shop)
        assert owners[branch.retell_llm_id] == key
        assert owners[branch.retell_agent_id] == key
        assert owners[branch.phone] == key
        assert retell_endpoint(shop).secret == key
    with tenant_context(alpha.company), pytest.raises(Branch.DoesNotExist):
        Branch.objects.get(pk=beta.branch.pk)


def test_another_companys_agent_id_is_never_touched(
    sim: ProviderSimulator, alpha: Shop, beta: Shop
) -> None:
    provision(alpha)
    theirs = reload(alpha).retell_agent_id
    with tenant_context(beta.company):
        Branch.objects.filter(pk=beta.branch.pk).update(retell_agent_id=theirs)

    provision(beta)

    assert sim.state["retell"]["agents"][theirs]["version"] == 0
    assert reload(beta).retell_agent_id != theirs
    assert sim.state["retell"]["owners"][reload(beta).retell_agent_id] == KEY_B


def test_a_company_without_a_retell_key_is_refused(
    sim: ProviderSimulator, alpha: Shop, db: Any
) -> None:
    gamma = make_shop("gamma", "DE", "Europe/Berlin", "+49301234599", key=None)

    with pytest.raises(CommandError, match="gamma has no Retell API key"):
        provision(gamma)
    assert writes(sim) == []


def test_an_unknown_branch_is_a_clear_error(db: Any) -> None:
    with pytest.raises(CommandError, match="No branch with id 999999"):
        run("provision_agent", "--branch", "999999")


# -- webhooks ----------------------------------------------------------------------------
def connect_all(shop: Shop) -> None:
    with tenant_context(shop.company):
        connect("calcom", "cal_live_alpha_secret")
        connect("stripe", "sk_test_alpha_secret")


def endpoints(shop: Shop) -> dict[str, WebhookEndpoint]:
    with tenant_context(shop.company):
        return {e.provider: e for e in WebhookEndpoint.objects.all()}


def test_register_webhooks_twice_registers_one_of_each_with_consistent_secrets(
    sim: ProviderSimulator, alpha: Shop
) -> None:
    connect_all(alpha)
    first = run("register_webhooks", "--company", "alpha")
    made = {p: e.secret for p, e in endpoints(alpha).items()}
    second = run("register_webhooks", "--company", "alpha")

    hooks = list(sim.state["calcom"]["webhooks"].values())
    stripe_endpoints = list(sim.state["stripe"]["webhook_endpoints"].values())
    assert len(hooks) == 1
    assert len(stripe_endpoints) == 1
    stored = endpoints(alpha)
    assert {p: e.secret for p, e in stored.items()} == made
    assert stored["retell"].secret == KEY_A
    assert hooks[0]["subscriberUrl"] == f"{PUBLIC}{stored['calcom'].path}"
    assert hooks[0]["_secret"] == stored["calcom"].secret
    assert stripe_endpoints[0]["url"] == f"{PUBLIC}{stored['stripe'].path}"
    assert stripe_endpoints[0]["_secret"] == stored["stripe"].secret
    body = json.dumps({"triggerEvent": "BOOKING_CREATED", "payload": {"uid": "u1"}}).encode()
    signature = sign_calcom(body, stored["calcom"].secret)
    verify_calcom(body, {"X-Cal-Signature-256": signature}, stored["calcom"].secret)
    with tenant_context(alpha.company):
        remote = {i.provider: i.remote for i in Integration.objects.all()}
    assert remote["calcom"] == {"webhook_id": hooks[0]["id"]}
    assert remote["stripe"] == {"webhook_endpoint_id": stripe_endpoints[0]["id"]}
    assert "stripe  created" in first
    assert "stripe  unchanged" in second
    for secret in [*made.values(), "cal_live_alpha_secret", "sk_test_alpha_secret"]:
        assert secret not in first + second


def test_providers_without_keys_are_skipped(sim: ProviderSimulator, alpha: Shop) -> None:
    out = run("register_webhooks", "--company", "alpha")

    assert "calcom  skipped" in out
    assert "no Cal.com API key" in out
    assert "stripe  skipped" in out
    assert "retell  created" in out
    assert set(endpoints(alpha)) == {"retell"}
    assert sim.requests("calcom") == []
    assert sim.requests("stripe") == []


def test_a_failing_provider_doesnt_stop_the_others(sim: ProviderSimulator, alpha: Shop) -> None:
    connect_all(alpha)
    sim.set_fault("calcom", error_rate=1.0, error_status=400)

    with pytest.raises(CommandError, match="registration failed for calcom"):
        run("register_webhooks", "--company", "alpha")
    assert len(sim.state["stripe"]["webhook_endpoints"]) == 1


# -- auto-provisioning -------------------------------------------------------------------
def test_a_new_branch_is_provisioned_after_commit_when_the_company_asks(
    sim: ProviderSimulator, alpha: Shop, django_capture_on_commit_callbacks: Any
) -> None:
    Company.objects.filter(pk=alpha.company.pk).update(auto_provision_agents=True)

    with django_capture_on_commit_callbacks(execute=True), tenant_context(alpha.company):
        branch = Branch.objects.create(name="Kreuzberg", phone="+49309876543")

    with tenant_context(alpha.company):
        branch.refresh_from_db()
    assert branch.retell_agent_id in sim.state["retell"]["agents"]
    assert "+49309876543" in sim.state["retell"]["phone_numbers"]


def test_auto_provisioning_failure_leaves_the_branch_unprovisioned_and_says_why(
    sim: ProviderSimulator, alpha: Shop, django_capture_on_commit_callbacks: Any
) -> None:
    Company.objects.filter(pk=alpha.company.pk).update(auto_provision_agents=True)
    sim.set_fault("retell", error_rate=1.0)

    with django_capture_on_commit_callbacks(execute=True), tenant_context(alpha.company):
        branch = Branch.objects.create(name="Kreuzberg", phone="+49309876543")

    with tenant_context(alpha.company):
        branch.refresh_from_db()
    assert branch.retell_agent_id is None
    assert branch.agent_provisioned_at is None
    assert "retell" in branch.agent_provision_error
    assert len(sim.requests("retell")) == 3  # the seam's retries, nothing more


def test_no_auto_provisioning_unless_asked(
    sim: ProviderSimulator, alpha: Shop, django_capture_on_commit_callbacks: Any
) -> None:
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        tenant_context(alpha.company),
    ):
        Branch.objects.create(name="Kreuzberg", phone="+49309876543")
    assert callbacks == []
    assert sim.requests("retell") == []


# -- create_company ----------------------------------------------------------------------
def test_create_company_is_idempotent_and_prints_ids(db: Any) -> None:
    args = [
        "create_company",
        "--slug=nord",
        "--name=Nord Friseure",
        "--country=de",
        "--timezone=Europe/Berlin",
        "--branch-name=Altona",
        "--branch-phone=040 1234567",
        "--manager-email=chef@nord.example",
    ]
    first = json.loads(run(*args))
    second = json.loads(run(*args))

    assert first["company"]["created"]
    assert not second["company"]["created"]
    assert first["branch"]["created"]
    assert not second["branch"]["created"]
    assert first["manager"]["created"]
    assert not second["manager"]["created"]
    for part in ("company", "branch", "manager"):
        assert first[part]["id"] == second[part]["id"]
    assert first["branch"]["phone"] == "+49401234567"
    company = Company.objects.get(slug="nord")
    assert company.country == "DE"
    membership = Membership.objects.get(company=company)
    assert membership.role == "manager"
    assert not membership.user.has_usable_password()


def test_create_company_refuses_bad_input(db: Any) -> None:
    with pytest.raises(CommandError, match="timezone"):
        run("create_company", "--slug=x", "--name=X", "--country=DE", "--timezone=Mars/Base")
    assert not Company.objects.filter(slug="x").exists()
