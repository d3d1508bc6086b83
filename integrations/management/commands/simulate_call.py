"""Play a whole phone call against AskPro's real endpoints, with Retell played by the simulator."""

from __future__ import annotations

import json
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from bookings.models import Service
from integrations.credentials import connect, credentials_for
from integrations.errors import IntegrationError
from integrations.management.commands.provision_agent import company_of_branch
from integrations.provisioning.agent import ProvisioningError, provision
from integrations.simulator.driver import CallDriver
from tenants.context import tenant_context
from tenants.models import Branch
from tenants.phones import mask_phone
from webhooks.models import CallLog, CallStage

DEFAULT_SIMULATOR = "http://127.0.0.1:8900"


class Command(BaseCommand):
    help = (
        "Simulate a phone call to a branch: the provider simulator plays Retell (inbound "
        "webhook, call_started, the agent's tool calls, call_ended, call_analyzed) against "
        "PUBLIC_BASE_URL with real signatures; the caller finds a slot and books it. Needs "
        "`simulate_providers` running and RETELL_API_BASE pointing at it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--branch", type=int, required=True, metavar="ID")
        parser.add_argument("--simulator", default=DEFAULT_SIMULATOR, help="simulator URL")
        parser.add_argument("--caller", default="+4915112345678", help="the caller's number")
        parser.add_argument("--name", default="Erika Mustermann", help="the caller's name")
        parser.add_argument(
            "--wait", type=float, default=30.0, help="seconds to wait for the CallLog"
        )
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, branch: int, **options: Any) -> None:
        simulator = str(options["simulator"]).rstrip("/")
        if not str(settings.RETELL_API_BASE).startswith(simulator):
            raise CommandError(
                f"RETELL_API_BASE is {settings.RETELL_API_BASE}, not the simulator at {simulator}:"
                " refusing to provision a real Retell account for a simulated call."
            )
        company = company_of_branch(branch)
        trace: list[dict[str, Any]] = []
        with tenant_context(company):
            row = Branch.objects.get(pk=branch)
            if not row.phone:
                raise CommandError(f"branch {row.pk} has no phone number to call")
            self._prepare(row, company.slug, trace)
            service = (
                Service.objects.filter(active=True, staff__branch=row, staff__active=True)
                .distinct()
                .order_by("pk")
                .first()
            )
            if service is None:
                raise CommandError(f"no active service is offered at branch {row.pk}")
            driver = CallDriver(simulator)
            try:
                call_id = self._converse(driver, row, service, options, trace)
            finally:
                driver.close()
            log = self._wait_for_log(call_id, float(options["wait"]))
        ok = log is not None and log.appointment_id is not None
        trace.append(
            {
                "step": "result",
                "call_log": log.pk if log else None,
                "appointment": log.appointment_id if log else None,
                "stage": log.get_stage_display() if log else None,
                "ok": ok,
            }
        )
        self._print(trace, bool(options["json"]))
        if not ok:
            raise CommandError("the call ended without a CallLog linked to a new appointment")

    def _prepare(self, branch: Branch, slug: str, trace: list[dict[str, Any]]) -> None:
        """The branch's agent exists at the simulator, pointing at PUBLIC_BASE_URL."""
        if credentials_for("retell") is None:
            connect("retell", f"key_sim_{slug}")
            trace.append({"step": "setup", "detail": "connected a simulated Retell key"})
        try:
            changes = provision(branch)
        except (IntegrationError, ProvisioningError) as exc:
            raise CommandError(f"provisioning at the simulator failed: {exc}") from exc
        trace.append({"step": "provision", "detail": "; ".join(str(c) for c in changes)})

    def _converse(
        self,
        driver: CallDriver,
        branch: Branch,
        service: Service,
        options: dict[str, Any],
        trace: list[dict[str, Any]],
    ) -> str:
        started = driver.start(branch.phone, str(options["caller"]))
        call_id = str(started["call_id"])
        trace.extend(_steps(started["steps"]))
        trace.append(_tool(driver.function(call_id, "find_customer"), "find_customer"))
        slots: list[dict[str, Any]] = []
        for offset in range(1, 8):  # the first day ahead with a free slot
            day = time.strftime("%Y-%m-%d", time.localtime(time.time() + offset * 86400))
            answer = driver.function(call_id, "check_availability", service=service.name, date=day)
            trace.append(_tool(answer, "check_availability"))
            slots = (answer.get("body") or {}).get("slots") or []
            if slots:
                break
        if not slots:
            raise CommandError("no free slot in the next 7 days to book")
        booked = driver.function(
            call_id,
            "book_appointment",
            service=service.name,
            start=slots[0]["start"],
            name=str(options["name"]),
        )
        trace.append(_tool(booked, "book_appointment"))
        trace.extend(_steps(driver.end(call_id, f"Booked {service.name}.")["steps"]))
        return call_id

    def _wait_for_log(self, call_id: str, seconds: float) -> CallLog | None:
        """The webhooks are processed by Celery: wait for the analyzed, linked CallLog."""
        deadline = time.monotonic() + seconds
        while True:
            log = CallLog.objects.filter(call_id=call_id).first()
            done = log is not None and log.appointment_id and log.stage == CallStage.ANALYZED
            if done or time.monotonic() > deadline:
                return log
            time.sleep(0.25)

    def _print(self, trace: list[dict[str, Any]], as_json: bool) -> None:
        if as_json:
            self.stdout.write(json.dumps(trace, default=str))
            return
        for step in trace:
            name = step["step"]
            if name == "result":
                mark = "OK" if step["ok"] else "FAILED"
                self.stdout.write(
                    f"{mark}: CallLog {step['call_log']} (stage {step['stage']}) linked to "
                    f"appointment {step['appointment']}"
                )
            elif "status" in step:
                self.stdout.write(f"-> {name:20} {step['status']}  {step.get('detail', '')}")
            else:
                self.stdout.write(f"   {name:20} {step.get('detail', '')}")


def _steps(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"step": s["step"], "status": s["status"], "detail": _said(s["body"])} for s in steps]


def _tool(answer: dict[str, Any], name: str) -> dict[str, Any]:
    return {"step": name, "status": answer["status"], "detail": _said(answer["body"])}


def _said(body: Any) -> str:
    """What the agent would speak, or the gist of a webhook answer (no phone numbers)."""
    if not isinstance(body, dict):
        return str(body)[:120]
    if "spoken" in body:
        extra = f" [{body.get('status')}]" if body.get("status") else ""
        return f"{str(body['spoken'])[:160]!r}{extra}"
    if "call_inbound" in body:
        variables = (body["call_inbound"] or {}).get("dynamic_variables") or {}
        return "dynamic variables: " + ", ".join(sorted(variables))
    text = json.dumps(body, default=str)[:120]
    return mask_phone(text) if text.startswith("+") else text
