"""Plan and apply a branch's voice agent at Retell: the Retell LLM, the agent, the number.

    changes = plan(branch).changes           # what differs; nothing is written
    done = provision(branch)                 # plan under a per-branch lock, then apply

Objects are found by the ids stored on the branch (`retell_llm_id`, `retell_agent_id`)
and by the branch's phone number, under the company's own Retell key; what Retell
doesn't have (deleted, or never made) is created and its id stored at once, so a failed
run re-run later updates instead of duplicating. Existing objects are always sent the
full definition (an update, a new version at Retell), so a re-run converges even on
fields Retell changed behind our back; the plan shows which fields differ.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from django.core.cache import cache
from django.utils import timezone

from integrations.clients.retell import RetellClient
from integrations.credentials import Credentials, credentials_for
from integrations.deadline import Deadline
from integrations.provisioning.definition import AgentDefinition
from integrations.provisioning.webhooks import retell_endpoint
from tenants.models import Branch, Company
from tenants.phones import mask_phone
from webhooks.models import WebhookEndpoint

logger = logging.getLogger(__name__)

DEADLINE_SECONDS = 60.0
LOCK_SECONDS = 120
NEW = "<new>"  # the id of an object this run will create


class ProvisioningError(Exception):
    """Provisioning can't start: no credentials, or another run holds the branch."""


@dataclass(frozen=True, slots=True)
class Change:
    """One object: what happens (or happened) to it, and which fields differ."""

    kind: str  # webhook_endpoint, llm, agent, phone_number
    action: str  # create, update, unchanged, skip (plan); created, updated, skipped (apply)
    ident: str = ""
    fields: tuple[str, ...] = ()
    note: str = ""

    def __str__(self) -> str:
        text = f"{self.kind:<16} {self.action:<9} {self.ident or NEW}"
        if self.fields:
            text += f"  fields: {', '.join(self.fields)}"
        elif self.action == "updated":
            text += "  (no differences)"
        return text + (f"  ({self.note})" if self.note else "")


@dataclass
class Plan:
    definition: AgentDefinition
    client: RetellClient
    endpoint: WebhookEndpoint
    endpoint_fields: list[str]
    llm_fields: dict[str, Any]
    llm_id: str | None  # exists at Retell
    agent_id: str | None
    phone_exists: bool
    changes: list[Change] = field(default_factory=list)

    @property
    def branch(self) -> Branch:
        return self.definition.branch

    @property
    def has_differences(self) -> bool:
        return any(c.action in ("create", "update") for c in self.changes)


def _same(want: Any, have: Any) -> bool:
    """`want` is in `have`: dict keys we set match, lists match item by item."""
    if isinstance(want, dict):
        return isinstance(have, dict) and all(_same(v, have.get(k)) for k, v in want.items())
    if isinstance(want, list):
        return (
            isinstance(have, list)
            and len(want) == len(have)
            and all(_same(w, h) for w, h in zip(want, have, strict=True))
        )
    return bool(want == have)


def _compare(kind: str, ident: str | None, remote: Any, desired: dict[str, Any]) -> Change:
    if remote is None:
        return Change(kind, "create", "", tuple(sorted(desired)))
    have = remote.to_dict()
    differ = tuple(sorted(k for k, v in desired.items() if not _same(v, have.get(k))))
    return Change(kind, "update" if differ else "unchanged", ident or "", differ)


def _credentials(company: Company) -> Credentials:
    credentials = credentials_for("retell")
    if credentials is None:
        raise ProvisioningError(
            f"{company.slug} has no Retell API key: "
            f"connect_provider --company {company.slug} --provider retell"
        )
    return credentials


def plan(branch: Branch, client: RetellClient | None = None) -> Plan:
    """Compare the branch's definition with Retell; read-only on both sides."""
    company = Company.objects.get(pk=branch.company_id)
    credentials = _credentials(company)
    client = client or RetellClient(credentials, Deadline.after(DEADLINE_SECONDS))
    endpoint, endpoint_fields = retell_endpoint(credentials)
    definition = AgentDefinition(branch, company, str(endpoint.pk), endpoint.path)
    changes = [
        Change(
            "webhook_endpoint",
            "create" if endpoint._state.adding else "update" if endpoint_fields else "unchanged",
            str(endpoint.pk),
            tuple(endpoint_fields),
        )
    ]
    llm = client.get_llm(branch.retell_llm_id) if branch.retell_llm_id else None
    llm_fields = definition.llm_fields()
    changes.append(_compare("llm", llm.llm_id if llm else None, llm, llm_fields))
    agent = client.get_agent(branch.retell_agent_id) if branch.retell_agent_id else None
    agent_fields = definition.agent_fields(llm.llm_id if llm else NEW)
    changes.append(_compare("agent", agent.agent_id if agent else None, agent, agent_fields))
    phone = None
    if definition.phone_number:
        phone = client.get_phone_number(definition.phone_number)
        phone_fields = definition.phone_fields(agent.agent_id if agent else NEW)
        change = _compare("phone_number", definition.phone_number, phone, phone_fields)
        changes.append(replace(change, ident=mask_phone(definition.phone_number)))
    else:
        changes.append(Change("phone_number", "skip", "-", note="the branch has no phone"))
    return Plan(
        definition=definition,
        client=client,
        endpoint=endpoint,
        endpoint_fields=endpoint_fields,
        llm_fields=llm_fields,
        llm_id=llm.llm_id if llm else None,
        agent_id=agent.agent_id if agent else None,
        phone_exists=phone is not None,
        changes=changes,
    )


def _store(branch: Branch, **values: Any) -> None:
    for name, value in values.items():
        setattr(branch, name, value)
    branch.save(update_fields=list(values))


def apply(plan: Plan) -> list[Change]:
    """Make Retell match the plan; store each new id as soon as Retell gives it."""
    client, definition, branch = plan.client, plan.definition, plan.branch
    endpoint_change, llm_change, agent_change, phone_change = plan.changes
    done = [replace(endpoint_change, action=_past(endpoint_change.action))]
    if plan.endpoint_fields:
        plan.endpoint.save()

    if plan.llm_id:
        llm_id = client.update_llm(plan.llm_id, **plan.llm_fields).llm_id
    else:
        llm_id = client.create_llm(**plan.llm_fields).llm_id
        _store(branch, retell_llm_id=llm_id)
    done.append(replace(llm_change, action=_written(plan.llm_id), ident=llm_id))

    agent_fields = definition.agent_fields(llm_id)
    if plan.agent_id:
        agent_id = client.update_agent(plan.agent_id, **agent_fields).agent_id
    else:
        agent_id = client.create_agent(**agent_fields).agent_id
        _store(branch, retell_agent_id=agent_id)
    done.append(replace(agent_change, action=_written(plan.agent_id), ident=agent_id))

    number = definition.phone_number
    if number:
        phone_fields = definition.phone_fields(agent_id)
        if plan.phone_exists:
            client.update_phone_number(number, **phone_fields)
        else:
            client.import_phone_number(
                number, termination_uri=definition.termination_uri(), **phone_fields
            )
        done.append(replace(phone_change, action="updated" if plan.phone_exists else "imported"))
    else:
        done.append(replace(phone_change, action="skipped"))
    _store(branch, agent_provisioned_at=timezone.now(), agent_provision_error="")
    return done


def _past(action: str) -> str:
    return {"create": "created", "update": "updated", "skip": "skipped"}.get(action, action)


def _written(existing: str | None) -> str:
    return "updated" if existing else "created"


@contextmanager
def _branch_lock(branch: Branch) -> Iterator[None]:
    """One provisioning run per branch at a time (a command and the auto task may race)."""
    key = f"askpro:provision-agent:{branch.company_id}:{branch.pk}"
    try:
        acquired = cache.add(key, "1", timeout=LOCK_SECONDS)
    except Exception:  # the cache is down: run unlocked rather than not at all
        logger.warning("provisioning lock unavailable (cache down); running unlocked")
        acquired = None
    if acquired is False:
        raise ProvisioningError(f"branch {branch.pk} is being provisioned by another run")
    try:
        yield
    finally:
        if acquired:
            cache.delete(key)


def provision(branch: Branch, *, dry_run: bool = False) -> list[Change]:
    """Plan, and unless `dry_run` apply, the branch's agent (inside the bound tenant)."""
    if dry_run:
        return plan(branch).changes
    with _branch_lock(branch):
        branch.refresh_from_db()
        return apply(plan(branch))
