"""``POST /webhooks/retell/<endpoint_id>/inbound/``: Retell's inbound-call webhook.

Answered synchronously, well within Retell's 10 s, from a few queries and no provider
call, in Retell's shape::

    {"call_inbound": {"dynamic_variables": {...strings...}, "metadata": {...}}}

No ``override_agent_id``: the number's own agent takes the call. Every variable is
always present (empty when unknown), so the prompt never shows a raw ``{{name}}``.
Signed like Retell webhooks (401 / 404); past that it fails open — any error still
answers 200 with the empty variables, because an error would only hold the caller in
ringing while Retell retries. Nothing is stored in the inbox.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from bookings.caller import caller_phone, customer_by_phone
from integrations.provisioning.definition import language_for, opening_hours
from tenants.context import tenant_context
from tenants.models import Company
from webhooks.tools.context import branch_for_call
from webhooks.tools.signed import Refused, read_signed

logger = logging.getLogger(__name__)

VARIABLES = (
    "customer_name",
    "customer_known",
    "caller_withheld",
    "company_name",
    "branch_name",
    "branch_timezone",
    "opening_hours",
    "language",
)


def empty_variables() -> dict[str, str]:
    return dict.fromkeys(VARIABLES, "")


def caller_context(company_id: int, payload: dict[str, Any] | None) -> dict[str, Any]:
    """The ``call_inbound`` answer, inside the company's tenant."""
    inbound = (payload or {}).get("call_inbound") or {}
    if not isinstance(inbound, dict):
        inbound = {}
    variables = empty_variables()
    metadata: dict[str, str] = {}
    company = Company.objects.only("name", "country").get(pk=company_id)
    variables["company_name"] = company.name
    branch = branch_for_call(
        str(inbound.get("agent_id") or ""), str(inbound.get("to_number") or "")
    )
    country = branch.country if branch is not None else company.country
    variables["language"] = language_for(country).code
    if branch is not None:
        variables["branch_name"] = branch.name
        variables["branch_timezone"] = branch.timezone
        variables["opening_hours"] = "; ".join(opening_hours(branch))
        metadata["askpro_branch_id"] = str(branch.pk)
    caller = caller_phone(str(inbound.get("from_number") or ""), country)
    variables["caller_withheld"] = "true" if caller is None else "false"
    customer = customer_by_phone(caller) if caller is not None else None
    variables["customer_known"] = "true" if customer is not None else "false"
    if customer is not None:
        variables["customer_name"] = customer.name
        metadata["askpro_customer_id"] = str(customer.pk)
    return {"dynamic_variables": variables, "metadata": metadata}


@csrf_exempt
@require_POST
def receive(request: HttpRequest, endpoint_id: uuid.UUID) -> JsonResponse:
    answer: dict[str, Any] = {"dynamic_variables": empty_variables()}
    try:
        signed = read_signed(request, endpoint_id)
    except Refused as refused:
        return refused.response
    except Exception:
        logger.exception("retell inbound: endpoint lookup failed; answering without context")
        return JsonResponse({"call_inbound": answer})
    try:
        with tenant_context(signed.endpoint.company_id):
            answer = caller_context(signed.endpoint.company_id, signed.payload)
    except Exception:  # fail open: the call goes ahead without context
        logger.exception("retell inbound: caller context failed; answering without it")
    return JsonResponse({"call_inbound": answer}, json_dumps_params={"ensure_ascii": False})
