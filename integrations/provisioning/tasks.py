"""Auto-provisioning: a new branch of a company with `auto_provision_agents` gets its agent.

The task is queued after the branch's transaction commits (queue `integrations`, by
the `integrations.*` route). It
does not retry: the seam already retried within its deadline, and a provider outage or
missing key is for an operator — the branch keeps no agent and shows why
(`Branch.agent_provision_error`, visible in the admin); `provision_agent` finishes it.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from askpro.celery import app
from integrations.errors import IntegrationError
from integrations.provisioning.agent import ProvisioningError, provision
from tenants.models import Branch, Company
from tenants.tasks import TenantTask

logger = logging.getLogger(__name__)


@app.task(
    base=TenantTask,
    name="integrations.provision_branch_agent",
    acks_late=True,
    soft_time_limit=120,
    time_limit=180,
    ignore_result=True,
)
def provision_branch_agent(*, company_id: int, branch_id: int) -> str:
    """Provision one branch's Retell agent; failures are logged and left on the branch."""
    branch = Branch.objects.filter(pk=branch_id).first()
    if branch is None:
        return "gone"
    try:
        changes = provision(branch)
    except (IntegrationError, ProvisioningError) as exc:
        logger.warning(
            "agent provisioning failed for branch %s of company %s: %s",
            branch_id,
            company_id,
            exc,
        )
        branch.agent_provision_error = str(exc)[:300]
        branch.save(update_fields=["agent_provision_error"])
        return "failed"
    logger.info(
        "agent provisioned for branch %s of company %s: %s",
        branch_id,
        company_id,
        "; ".join(str(c) for c in changes),
    )
    return "provisioned"


def queue_for_new_branch(
    sender: type[Branch], instance: Branch, created: bool, raw: bool = False, **kwargs: Any
) -> None:
    """post_save of Branch: queue provisioning after commit when the company wants it."""
    if not created or raw:
        return
    wants = Company.objects.filter(pk=instance.company_id, auto_provision_agents=True).exists()
    if not wants:
        return
    company_id, branch_id = instance.company_id, instance.pk
    transaction.on_commit(
        lambda: provision_branch_agent.delay(company_id=company_id, branch_id=branch_id),
        robust=True,
    )
