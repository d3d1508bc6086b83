"""What a branch's voice agent should be: prompt, greeting, language, tools, phone binding.

Built from our database alone (services, staff hours, branch and company), inside the
bound tenant; `plan` compares it with what Retell has.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import time
from typing import Any

from django.conf import settings

from integrations.provisioning.tools import agent_tools
from tenants.models import Branch, Company

DEFAULT_VOICE_ID = "11labs-Adrian"
# A Twilio Elastic SIP trunk per company by default; `{company}` is the company's slug.
DEFAULT_TERMINATION_URI = "{company}.pstn.twilio.com"
WEBHOOK_EVENTS = ["call_started", "call_ended", "call_analyzed"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


@dataclass(frozen=True, slots=True)
class Language:
    code: str  # Retell's language code
    name: str
    greeting: str  # formatted with company and branch


ENGLISH = Language(
    "en-US",
    "English",
    "Hello, this is the digital assistant of {company}, {branch}. How can I help you?",
)
GERMAN = Language(
    "de-DE",
    "German",
    "Guten Tag, hier ist der digitale Assistent von {company}, {branch}. "
    "Wie kann ich Ihnen helfen?",
)
LANGUAGES = {"DE": GERMAN, "AT": GERMAN, "CH": GERMAN}


def language_for(country: str) -> Language:
    return LANGUAGES.get(country.upper(), ENGLISH)


def public_url(path: str) -> str:
    return str(settings.PUBLIC_BASE_URL).rstrip("/") + path


def _merge(shifts: list[tuple[time, time]]) -> list[tuple[time, time]]:
    merged: list[tuple[time, time]] = []
    for start, end in sorted(shifts):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def opening_hours(branch: Branch) -> list[str]:
    """Per weekday, the union of active staff's shifts (branch time); equal days grouped."""
    from bookings.models import WorkingHours

    shifts: dict[int, list[tuple[time, time]]] = defaultdict(list)
    rows = WorkingHours.objects.filter(staff__branch=branch, staff__active=True)
    for weekday, start, end in rows.values_list("weekday", "start", "end"):
        shifts[weekday].append((start, end))
    spans = [
        ", ".join(f"{s:%H:%M}-{e:%H:%M}" for s, e in _merge(shifts[day])) or "closed"
        for day in range(7)
    ]
    lines: list[str] = []
    first = 0
    for day in range(1, 8):
        if day == 7 or spans[day] != spans[first]:
            days = DAYS[first] if day - 1 == first else f"{DAYS[first]} to {DAYS[day - 1]}"
            lines.append(f"{days}: {spans[first]}")
            first = day
    return lines


def service_lines(branch: Branch) -> list[str]:
    """The branch's active services (those its active staff offer; else the company's)."""
    from bookings.models import Service

    active = Service.objects.filter(active=True).order_by("name")
    offered = active.filter(staff__branch=branch, staff__active=True).distinct()
    lines = []
    for service in offered or active:
        line = f"{service.name} (id {service.pk}): {service.duration_minutes} minutes"
        if service.price:
            line += f", {service.price:.2f} {service.currency}"
        lines.append(line)
    return lines


def prompt(branch: Branch, company: Company, language: Language) -> str:
    services = service_lines(branch) or ["(none listed yet: offer to transfer the caller)"]
    place = f'"{branch.name}"' + (f" ({branch.address})" if branch.address else "")
    steps = [
        "At the start call find_customer; greet a known caller by name.",
        "For free times call check_availability with the service and the day(s) "
        "(YYYY-MM-DD); offer at most three slots, using the spoken text it returns.",
        "Before booking, get the caller's full name and confirm service and time; then "
        "call book_appointment with the slot's start exactly as returned.",
        "To cancel or move an appointment, call list_my_appointments first and ask the "
        "caller to confirm their name (confirm_name).",
        'When a function answers status "error", tell the caller its spoken text. Never '
        "invent slots, prices or appointments.",
    ]
    if branch.transfer_phone or branch.phone:
        steps.append("If the caller wants a person or you can't help, use transfer_to_branch.")
    steps.append("When the caller has nothing else, say goodbye and use end_call.")
    return "\n".join(
        [
            f"You answer the phone for {company.name}, branch {place}. You find free "
            "appointment slots and book, move or cancel appointments.",
            f"Speak {language.name} (answer in the caller's language if they use another).",
            f"The time now is {{{{current_time_{branch.timezone}}}}} (time zone "
            f"{branch.timezone}); all times you say are branch time.",
            "",
            "Services:",
            *(f"- {line}" for line in services),
            "",
            f"Opening hours ({branch.timezone}):",
            *(f"- {line}" for line in opening_hours(branch)),
            "",
            "How to work:",
            *(f"- {step}" for step in steps),
        ]
    )


@dataclass(frozen=True, slots=True)
class AgentDefinition:
    """The desired Retell objects of one branch; ids of objects not made yet come later."""

    branch: Branch
    company: Company
    endpoint_id: str
    endpoint_path: str

    @property
    def language(self) -> Language:
        return language_for(self.branch.country)

    @property
    def phone_number(self) -> str:
        return self.branch.phone

    def llm_fields(self) -> dict[str, Any]:
        language = self.language
        return {
            "general_prompt": prompt(self.branch, self.company, language),
            "begin_message": language.greeting.format(
                company=self.company.name, branch=self.branch.name
            ),
            "general_tools": agent_tools(
                str(settings.PUBLIC_BASE_URL),
                self.endpoint_id,
                self.branch.transfer_phone or self.branch.phone,
            ),
            "start_speaker": "agent",
        }

    def agent_fields(self, llm_id: str) -> dict[str, Any]:
        return {
            "agent_name": f"{self.company.name} - {self.branch.name}"[:200],
            "response_engine": {"type": "retell-llm", "llm_id": llm_id},
            "voice_id": getattr(settings, "RETELL_VOICE_ID", "") or DEFAULT_VOICE_ID,
            "language": self.language.code,
            "webhook_url": public_url(self.endpoint_path),
            "webhook_events": WEBHOOK_EVENTS,
        }

    def phone_fields(self, agent_id: str) -> dict[str, Any]:
        return {
            "inbound_agents": [{"agent_id": agent_id, "weight": 1}],
            "inbound_webhook_url": public_url(f"{self.endpoint_path}inbound/"),
            "nickname": f"{self.company.name} - {self.branch.name}"[:100],
        }

    def termination_uri(self) -> str:
        template = getattr(settings, "RETELL_TERMINATION_URI", "") or DEFAULT_TERMINATION_URI
        return str(template).format(company=self.company.slug)
