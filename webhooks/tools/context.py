"""One tool call's context: the branch the agent answers for, the caller, the clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.utils import timezone

from bookings.caller import caller_phone
from tenants.models import Branch
from webhooks.tools import speech


@dataclass(frozen=True, slots=True)
class CallContext:
    """Built inside the company's ``tenant_context``; ``caller`` is E.164 or ``None``."""

    branch: Branch
    call_id: str
    caller: str | None
    lang: str
    tz: ZoneInfo
    now: datetime = field(default_factory=timezone.now)

    @classmethod
    def of(cls, branch: Branch, call: dict[str, Any]) -> CallContext:
        return cls(
            branch=branch,
            call_id=str(call.get("call_id") or ""),
            caller=caller_phone(str(call.get("from_number") or ""), branch.country),
            lang=speech.language(branch.country),
            tz=ZoneInfo(branch.timezone),
        )

    @property
    def today(self) -> date:
        return self.now.astimezone(self.tz).date()

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.tz)

    def say(self, key: str, **values: str) -> str:
        return speech.say(self.lang, key, **values)

    def when(self, moment: datetime) -> str:
        return speech.when(self.lang, self.local(moment), self.today)

    def on_day(self, day: date) -> str:
        return speech.on_day(self.lang, day, self.today)


def branch_for_call(agent_id: str, to_number: str) -> Branch | None:
    """The branch whose agent took the call (``Branch.retell_agent_id``); without an agent
    id, the branch whose number was called. Inside the bound company only."""
    if agent_id:
        return Branch.objects.filter(retell_agent_id=agent_id).first()
    if to_number:
        return Branch.objects.filter(phone=to_number).order_by("pk").first()
    return None
