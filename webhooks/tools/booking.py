"""``check_availability`` and ``book_appointment``.

A booking is keyed ``retell:<call>:<service>:<start in UTC>``: Retell's retries and a
concurrent repeat of the same request land on the one appointment (the saga's
``idempotency_key``, unique per company in PostgreSQL).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from bookings import saga, services
from bookings.availability import MAX_RANGE_DAYS, Rules
from bookings.errors import BookingError, SlotTaken
from bookings.matching import names_match
from bookings.models import (
    Appointment,
    AppointmentSource,
    AppointmentStatus,
    Customer,
    DepositStatus,
    Service,
    StaffMember,
)
from integrations.deadline import Deadline
from webhooks.tools import present, speech
from webhooks.tools.answers import Answer, InvalidArguments, ToolRefusal
from webhooks.tools.args import AvailabilityArgs, BookArgs
from webhooks.tools.context import CallContext
from webhooks.tools.lookup import resolve_service, resolve_staff
from webhooks.tools.slots import (
    Search,
    all_closed,
    closed,
    nearest,
    next_open_days,
    search,
    spread,
    taken,
)

PHONE = services.Actor(kind="phone")
# Retell gives a function 8 s (integrations/provisioning/tools.py); Cal.com gets at most
# this much of it, after which the booking stays pending and the outbox finishes it.
BOOK_DEADLINE_SECONDS = 5.0


def _names(staff: Sequence[StaffMember]) -> dict[int, str]:
    return {member.pk: member.name for member in staff}


def window_refusal(ctx: CallContext, service: Service, start: datetime) -> ToolRefusal | None:
    """Too early, too soon or too far ahead for ``service`` (its booking rules)."""
    rules = Rules.of(service)
    if start < ctx.now:
        return ToolRefusal("outside_window", ctx.say("past"))
    if start < ctx.now + rules.min_notice:
        minutes = str(service.min_notice_minutes)
        return ToolRefusal(
            "outside_window", ctx.say("too_soon", service=service.name, minutes=minutes)
        )
    if start > ctx.now + rules.horizon:
        days = str(service.horizon_days)
        return ToolRefusal("outside_window", ctx.say("too_far", service=service.name, days=days))
    return None


def no_free_time(
    ctx: CallContext,
    service: Service,
    staff: Sequence[StaffMember],
    code: str,
    first: date,
    last: date,
) -> ToolRefusal:
    """``closed`` / ``no_slots`` for ``first..last``, naming the next days with free time."""
    following = next_open_days(service, staff, last, ctx.now)
    spoken = ctx.say(code, on_day=speech.span(ctx.lang, first, last, ctx.today))
    if following:
        found = [ctx.local(slot.start).date() for slot in following]
        spoken += " " + ctx.say("next_days", days=speech.days(ctx.lang, found, ctx.today))
    else:
        spoken += " " + ctx.say("nothing_soon")
    names = _names(staff)
    return ToolRefusal(
        code,
        spoken,
        next_days=[
            {
                "date": ctx.local(s.start).date().isoformat(),
                "first_slot": present.slot(ctx, s, names),
            }
            for s in following
        ],
    )


def check_availability(ctx: CallContext, args: AvailabilityArgs) -> Answer:
    service = resolve_service(ctx, args.service)
    staff = resolve_staff(ctx, service, args.staff)
    first = args.date or ctx.today
    last = args.date_to or first
    if last < ctx.today:
        raise ToolRefusal("outside_window", ctx.say("past"))
    first = max(first, ctx.today)
    last = min(last, first + timedelta(days=MAX_RANGE_DAYS - 1))
    if first > ctx.local(ctx.now + Rules.of(service).horizon).date():
        days = str(service.horizon_days)
        raise ToolRefusal("outside_window", ctx.say("too_far", service=service.name, days=days))
    result = search(service, staff, first, last, ctx.now)
    if not result.slots:
        code = "closed" if all_closed(result) else "no_slots"
        raise no_free_time(ctx, service, staff, code, first, last)
    picks = spread(result.slots)
    names = _names(staff)
    return {
        "status": "ok",
        "service": {"id": service.pk, "name": service.name},
        "slots": [present.slot(ctx, slot, names) for slot in picks],
        "spoken": ctx.say("slots", times=present.slots_spoken(ctx, picks, names)),
    }


def slot_refusal(
    ctx: CallContext,
    service: Service,
    staff: Sequence[StaffMember],
    result: Search,
    start: datetime,
) -> ToolRefusal:
    """``start`` can't be had: ``closed`` (with the next open days), or ``slot_taken`` /
    ``unavailable`` with the free times nearest to it."""
    if closed(result, result.first):
        return no_free_time(ctx, service, staff, "closed", result.first, result.last)
    code = "slot_taken" if taken(service, result, start, ctx.now) else "unavailable"
    alternatives = nearest(result.slots, start) or next_open_days(
        service, staff, result.last, ctx.now
    )
    names = _names(staff)
    spoken = ctx.say(code)
    if alternatives:
        spoken += " " + ctx.say(
            "alternatives", times=present.slots_spoken(ctx, alternatives, names)
        )
    return ToolRefusal(
        code, spoken, alternatives=[present.slot(ctx, slot, names) for slot in alternatives]
    )


def idempotency_key(call_id: str, service_id: int, start: datetime) -> str:
    key = f"retell:{call_id}:{service_id}:{start.astimezone(UTC).isoformat()}"
    if len(key) <= 200:
        return key
    return "retell:" + hashlib.sha256(key.encode()).hexdigest()


def booked_answer(ctx: CallContext, booked: Appointment) -> Answer:
    if booked.status == AppointmentStatus.CONFIRMED:
        status, phrase = "booked", "booked"
    elif booked.deposit_status == DepositStatus.REQUIRED:
        status, phrase = "pending", "pending_deposit"
    else:
        status, phrase = "pending", "pending_calendar"
    spoken = ctx.say(
        phrase,
        service=booked.service.name,
        when=ctx.when(booked.start),
        staff=booked.staff.name,
    )
    return {"status": status, "appointment": present.appointment(ctx, booked), "spoken": spoken}


def _by_key(key: str) -> Appointment | None:
    return (
        Appointment.objects.filter(idempotency_key=key).select_related("service", "staff").first()
    )


def _customer(ctx: CallContext, name: str) -> tuple[Customer, bool]:
    """The caller as a customer (created if new), and whether it was created now.

    A withheld number books too: as a customer without a phone, one per call (found
    again by the call id in its notes, so the call's retries reuse it)."""
    if ctx.caller is not None:
        existed = Customer.objects.filter(phone=ctx.caller).first()
        if existed is not None:
            return existed, False
        return services.find_or_create_customer(name, ctx.caller, ctx.branch.country), True
    marker = f"Phone withheld; booked on call {ctx.call_id}"
    existed = Customer.objects.filter(phone="", notes=marker).first()
    if existed is not None:
        return existed, False
    return Customer.objects.create(name=name, phone="", notes=marker), True


def _forget(customer: Customer, created: bool) -> None:
    """Drop a customer made for a booking that didn't happen (or landed on another row)."""
    if created and not Appointment.objects.filter(customer=customer).exists():
        customer.delete()


def book_appointment(ctx: CallContext, args: BookArgs) -> Answer:
    if not ctx.call_id:
        raise InvalidArguments("call", "call.call_id is required")
    service = resolve_service(ctx, args.service)
    start = args.start.astimezone(UTC)
    key = idempotency_key(ctx.call_id, service.pk, start)
    earlier = _by_key(key)
    if earlier is not None and earlier.is_active:
        return booked_answer(ctx, earlier)  # a retry: the booking stands
    staff = resolve_staff(ctx, service, args.staff)
    refusal = window_refusal(ctx, service, start)
    if refusal is not None:
        raise refusal
    day = ctx.local(start).date()
    result = search(service, staff, day, day, ctx.now)
    free = [slot for slot in result.slots if slot.start == start]
    if not free or earlier is not None:  # earlier: released since (the calendar refused)
        raise slot_refusal(ctx, service, staff, result, start)
    member = next(m for m in staff if m.pk == free[0].staff_id)
    customer, created = _customer(ctx, args.name)
    notes = "" if names_match(args.name, customer.name) else f"Name given on the phone: {args.name}"
    try:
        booked = saga.book(
            service=service,
            staff=member,
            start=start,
            customer=customer,
            actor=PHONE,
            source=AppointmentSource.PHONE,
            idempotency_key=key,
            notes=notes,
            deadline=Deadline.after(BOOK_DEADLINE_SECONDS),
        )
    except SlotTaken:
        # A concurrent repeat of this very request may have won the slot: that's ours.
        booked_by_repeat = _by_key(key)
        if booked_by_repeat is None or not booked_by_repeat.is_active:
            _forget(customer, created)
            again = search(service, staff, day, day, ctx.now)
            raise slot_refusal(ctx, service, staff, again, start) from None
        booked = booked_by_repeat
    except BookingError:
        _forget(customer, created)
        raise slot_refusal(ctx, service, staff, result, start) from None
    if booked.customer_id != customer.pk:
        _forget(customer, created)
    if not booked.is_active:  # the calendar refused it: the slot went back
        raise slot_refusal(ctx, service, staff, search(service, staff, day, day, ctx.now), start)
    return booked_answer(ctx, booked)
