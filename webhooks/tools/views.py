"""``POST /webhooks/retell/<endpoint_id>/functions/<name>/``: the voice agent's live tools.

Signed like Retell webhooks (401 / 404 as there); everything after that is HTTP 200
with a JSON answer: the tool's result, a refusal ``{status: "error", code, spoken}``, or
— for anything unexpected — ``code: "internal"`` with an incident id that is logged.
Never a 5xx: the agent must always have something to say. Nothing is stored in the
webhook inbox; the company comes from the endpoint, the branch from ``call.agent_id``.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from monitoring import metrics
from tenants.context import tenant_context
from tenants.models import Company
from webhooks.tools import speech
from webhooks.tools.answers import Answer, InvalidArguments, ToolRefusal
from webhooks.tools.args import PARSERS
from webhooks.tools.booking import book_appointment, check_availability
from webhooks.tools.caller_tools import (
    cancel_appointment,
    find_customer,
    list_my_appointments,
    reschedule_appointment,
)
from webhooks.tools.context import CallContext, branch_for_call
from webhooks.tools.signed import Refused, read_signed

logger = logging.getLogger(__name__)

TOOLS: dict[str, Callable[[CallContext, Any], Answer]] = {
    "find_customer": find_customer,
    "list_my_appointments": list_my_appointments,
    "check_availability": check_availability,
    "book_appointment": book_appointment,
    "cancel_appointment": cancel_appointment,
    "reschedule_appointment": reschedule_appointment,
}


@dataclass(slots=True)
class _Progress:
    """What is known so far, for the error boundary's answer."""

    company_id: int | None = None
    lang: str = speech.EN


def _answer(answer: Answer) -> JsonResponse:
    return JsonResponse(answer, status=200, json_dumps_params={"ensure_ascii": False})


def _company_lang(company_id: int) -> str:
    country = Company.objects.filter(pk=company_id).values_list("country", flat=True).first()
    return speech.language(country or "")


def _invalid(lang: str, field: str, message: str) -> Answer:
    return {
        "status": "error",
        "code": "invalid_arguments",
        "field": field,
        "message": message,
        "spoken": speech.say(lang, "invalid_arguments", field=speech.field_name(lang, field)),
    }


def run_tool(name: str, payload: Mapping[str, Any] | None, progress: _Progress) -> Answer:
    """Inside the company's tenant: validate, find the branch, run the tool."""
    assert progress.company_id is not None
    call, args = (payload or {}).get("call"), (payload or {}).get("args") or {}
    if name not in TOOLS or not isinstance(call, dict) or not isinstance(args, dict):
        progress.lang = _company_lang(progress.company_id)
        if name not in TOOLS:
            return ToolRefusal("unknown_tool", speech.say(progress.lang, "unknown_tool")).answer()
        field = "call" if not isinstance(call, dict) else "args"
        return _invalid(progress.lang, field, "the body must be {name, call, args}")
    branch = branch_for_call(str(call.get("agent_id") or ""), str(call.get("to_number") or ""))
    if branch is None:
        progress.lang = _company_lang(progress.company_id)
        return ToolRefusal("unknown_agent", speech.say(progress.lang, "unknown_agent")).answer()
    ctx = CallContext.of(branch, call)
    progress.lang = ctx.lang
    try:
        return TOOLS[name](ctx, PARSERS[name](args, ctx.tz))
    except InvalidArguments as exc:
        return _invalid(ctx.lang, exc.field, exc.message)
    except ToolRefusal as refusal:
        return refusal.answer()


def _internal(progress: _Progress, name: str) -> Answer:
    incident = uuid.uuid4().hex[:12]
    logger.exception(
        "voice tool %s failed (incident %s)", name, incident, extra={"error_id": incident}
    )
    return {
        "status": "error",
        "code": "internal",
        "incident": incident,
        "spoken": speech.say(progress.lang, "internal"),
    }


@csrf_exempt
@require_POST
def function(request: HttpRequest, endpoint_id: uuid.UUID, name: str) -> JsonResponse:
    began = time.perf_counter()
    tool = name if name in TOOLS else "other"  # a label from a closed set, not the URL
    progress = _Progress()
    try:
        signed = read_signed(request, endpoint_id)
    except Refused as refused:
        metrics.tool_calls.labels(tool, "unauthorized").inc()
        return refused.response
    except DatabaseError:
        answer = _internal(progress, name)
    else:
        progress.company_id = signed.endpoint.company_id
        try:
            with tenant_context(signed.endpoint.company_id):
                answer = run_tool(name, signed.payload, progress)
        except Exception:  # the one boundary: the agent always gets an answer
            answer = _internal(progress, name)
    seconds = time.perf_counter() - began
    metrics.tool_call_seconds.labels(tool).observe(seconds)
    metrics.tool_calls.labels(tool, _outcome(answer)).inc()
    logger.info(
        "voice tool %s: %s%s in %.1f ms",
        name,
        answer.get("status"),
        f" ({answer['code']})" if "code" in answer else "",
        seconds * 1000,
    )
    return _answer(answer)


def _outcome(answer: Answer) -> str:
    if answer.get("status") != "error":
        return "ok"
    return "error" if answer.get("code") == "internal" else "refused"
