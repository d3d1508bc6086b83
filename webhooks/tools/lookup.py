"""Services and staff by id or by the name the caller said, within the call's branch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from bookings.availability import bookable_staff
from bookings.matching import best_match
from bookings.models import Service, StaffMember
from webhooks.tools import speech
from webhooks.tools.answers import ToolRefusal
from webhooks.tools.args import Ref
from webhooks.tools.context import CallContext

T = TypeVar("T", Service, StaffMember)


def branch_services(ctx: CallContext) -> list[Service]:
    """Active services the branch's active staff offer (else the company's active ones)."""
    active = Service.objects.filter(active=True).order_by("name")
    offered = list(
        active.filter(staff__branch=ctx.branch, staff__active=True).distinct().order_by("name")
    )
    return offered or list(active)


def offering_staff(branch_id: int, service: Service) -> list[StaffMember]:
    """Active staff of the branch offering ``service``, with their branch, by id."""
    return [m for m in bookable_staff(service) if m.branch_id == branch_id]


def _pick(ctx: CallContext, wanted: Ref, candidates: Sequence[T], kind: str, **extra: str) -> T:
    names = [c.name for c in candidates]
    if isinstance(wanted, int):
        for candidate in candidates:
            if candidate.pk == wanted:
                return candidate
        match_options: list[T] = []
    else:
        match = best_match(wanted, [(c, c.name) for c in candidates])
        if match.found is not None:
            return match.found
        match_options = match.options
    if match_options:
        raise ToolRefusal(
            f"ambiguous_{kind}",
            ctx.say(
                f"ambiguous_{kind}",
                options=speech.either(ctx.lang, [o.name for o in match_options]),
            ),
            options=[{"id": o.pk, "name": o.name} for o in match_options],
        )
    raise ToolRefusal(
        f"unknown_{kind}",
        ctx.say(
            f"unknown_{kind}",
            query=str(wanted),
            options=speech.either(ctx.lang, names, last="and"),
            **extra,
        ),
        options=[{"id": c.pk, "name": c.name} for c in candidates],
    )


def resolve_service(ctx: CallContext, wanted: Ref) -> Service:
    services = branch_services(ctx)
    if not services:
        raise ToolRefusal("no_services", ctx.say("no_services"))
    return _pick(ctx, wanted, services, "service")


def resolve_staff(ctx: CallContext, service: Service, wanted: Ref | None) -> list[StaffMember]:
    """Who may do it: the one the caller asked for, or everyone offering it here."""
    staff = offering_staff(ctx.branch.pk, service)
    if not staff:
        raise ToolRefusal("no_services", ctx.say("no_services"))
    if wanted is None:
        return staff
    return [_pick(ctx, wanted, staff, "staff", service=service.name)]
