"""``find_customer``, ``list_my_appointments``, ``cancel_appointment``,
``reschedule_appointment``: the caller's own appointments only.

The caller is ``call.from_number`` inside the bound company; changing an appointment
also needs the name on the booking (``confirm_name``), so a spoofed caller ID alone
can't cancel or move anything. A withheld number can't change anything.
"""

from __future__ import annotations

from datetime import datetime

from bookings import services
from bookings.caller import customer_by_phone, recently_cancelled, upcoming
from bookings.errors import BookingError, InvalidTransition, SlotTaken
from bookings.matching import names_match
from bookings.models import Appointment, Customer
from webhooks.tools import present, speech
from webhooks.tools.answers import Answer, ToolRefusal
from webhooks.tools.args import CancelArgs, ListArgs, NoArgs, RescheduleArgs
from webhooks.tools.booking import PHONE, slot_refusal, window_refusal
from webhooks.tools.context import CallContext
from webhooks.tools.lookup import offering_staff
from webhooks.tools.slots import search

MAX_LISTED = 5


def find_customer(ctx: CallContext, args: NoArgs) -> Answer:
    if ctx.caller is None:
        return {
            "status": "ok",
            "known": False,
            "withheld": True,
            "customer": None,
            "spoken": ctx.say("caller_withheld"),
        }
    customer = customer_by_phone(ctx.caller)
    if customer is None:
        return {
            "status": "ok",
            "known": False,
            "withheld": False,
            "customer": None,
            "spoken": ctx.say("caller_unknown"),
        }
    count = upcoming(customer, ctx.now).count()
    return {
        "status": "ok",
        "known": True,
        "withheld": False,
        "customer": {"id": customer.pk, "name": customer.name, "upcoming": count},
        "spoken": ctx.say("caller_known", name=customer.name, count=speech.count(ctx.lang, count)),
    }


def _confirmed_customer(ctx: CallContext, confirm_name: str | None) -> Customer | None:
    """The caller as a customer (``None``: no record); refuses a withheld number and,
    when a name is given, a name that isn't the one on record."""
    if ctx.caller is None:
        raise ToolRefusal("number_withheld", ctx.say("number_withheld"))
    customer = customer_by_phone(ctx.caller)
    if (
        customer is not None
        and confirm_name is not None
        and not names_match(confirm_name, customer.name)
    ):
        raise ToolRefusal("name_mismatch", ctx.say("name_mismatch"))
    return customer


def list_my_appointments(ctx: CallContext, args: ListArgs) -> Answer:
    if ctx.caller is None:
        raise ToolRefusal("number_withheld", ctx.say("caller_withheld"))
    customer = _confirmed_customer(ctx, args.confirm_name)
    mine = list(upcoming(customer, ctx.now)[:MAX_LISTED]) if customer is not None else []
    if not mine:
        return {"status": "ok", "appointments": [], "spoken": ctx.say("no_appointments")}
    items = [present.appointment(ctx, appointment) for appointment in mine]
    return {
        "status": "ok",
        "appointments": items,
        "spoken": ctx.say(
            "listed",
            count=speech.count(ctx.lang, len(mine)),
            items=speech.either(ctx.lang, [item["spoken"] for item in items], last="and"),
        ),
    }


def _choose(ctx: CallContext, customer: Customer, wanted: int | None) -> Appointment:
    mine = list(upcoming(customer, ctx.now))
    if wanted is not None:
        for appointment in mine:
            if appointment.pk == wanted:
                return appointment
        raise ToolRefusal("appointment_not_found", ctx.say("appointment_not_found"))
    if len(mine) == 1:
        return mine[0]
    if not mine:
        raise ToolRefusal("no_appointments", ctx.say("no_appointments"))
    items = [present.appointment(ctx, appointment) for appointment in mine[:MAX_LISTED]]
    raise ToolRefusal(
        "choose_appointment",
        ctx.say("choose_appointment", items=speech.either(ctx.lang, [i["spoken"] for i in items])),
        appointments=items,
    )


def _cancelled_answer(ctx: CallContext, appointment: Appointment) -> Answer:
    return {
        "status": "cancelled",
        "appointment": present.appointment(ctx, appointment),
        "spoken": ctx.say(
            "cancelled", service=appointment.service.name, when=ctx.when(appointment.start)
        ),
    }


def _retried_cancel(ctx: CallContext, customer: Customer, wanted: int | None) -> Answer | None:
    """A repeat of a cancel that already went through (Retell retries after a timeout)."""
    recent = recently_cancelled(customer, ctx.now)
    if wanted is not None:
        recent = recent.filter(pk=wanted)
    elif upcoming(customer, ctx.now).exists():
        return None
    done = recent.first()
    return _cancelled_answer(ctx, done) if done is not None else None


def cancel_appointment(ctx: CallContext, args: CancelArgs) -> Answer:
    customer = _confirmed_customer(ctx, args.confirm_name)
    if customer is None:
        raise ToolRefusal("no_appointments", ctx.say("no_appointments"))
    repeated = _retried_cancel(ctx, customer, args.appointment)
    if repeated is not None:
        return repeated
    appointment = _choose(ctx, customer, args.appointment)
    try:
        cancelled = services.cancel_appointment(
            appointment, actor=PHONE, reason="Cancelled by the caller on the phone"
        )
    except InvalidTransition:
        raise ToolRefusal("not_changeable", ctx.say("not_changeable")) from None
    return _cancelled_answer(ctx, cancelled)


def _moved_answer(ctx: CallContext, appointment: Appointment) -> Answer:
    return {
        "status": "rescheduled",
        "appointment": present.appointment(ctx, appointment),
        "spoken": ctx.say(
            "rescheduled",
            service=appointment.service.name,
            when=ctx.when(appointment.start),
            staff=appointment.staff.name,
        ),
    }


def reschedule_appointment(ctx: CallContext, args: RescheduleArgs) -> Answer:
    customer = _confirmed_customer(ctx, args.confirm_name)
    if customer is None:
        raise ToolRefusal("no_appointments", ctx.say("no_appointments"))
    appointment = _choose(ctx, customer, args.appointment)
    start: datetime = args.start
    if appointment.start == start:
        return _moved_answer(ctx, appointment)  # already there (a retried move)
    service = appointment.service
    refusal = window_refusal(ctx, service, start)
    if refusal is not None:
        raise refusal
    staff = offering_staff(appointment.branch_id, service)
    day = ctx.local(start).date()
    result = search(service, staff, day, day, ctx.now, ignore=appointment.pk)
    free = {slot.staff_id for slot in result.slots if slot.start == start}
    if not free:
        raise slot_refusal(ctx, service, staff, result, start)
    staff_id = appointment.staff_id if appointment.staff_id in free else min(free)
    member = next(m for m in staff if m.pk == staff_id)
    try:
        moved = services.reschedule_appointment(appointment, start=start, actor=PHONE, staff=member)
    except InvalidTransition:
        raise ToolRefusal("not_changeable", ctx.say("not_changeable")) from None
    except (SlotTaken, BookingError):
        again = search(service, staff, day, day, ctx.now, ignore=appointment.pk)
        raise slot_refusal(ctx, service, staff, again, start) from None
    return _moved_answer(ctx, moved)
