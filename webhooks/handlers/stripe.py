"""Stripe payment webhooks → ``Payment`` rows and the appointment's deposit state."""

from __future__ import annotations

import logging
from typing import Any

from bookings.models import ACTIVE_STATUSES, Appointment
from bookings.services import Actor, record_deposit
from webhooks.handlers import handles
from webhooks.models import PAYMENT_PROGRESS, Payment, PaymentStatus, WebhookEvent

logger = logging.getLogger(__name__)
STRIPE = Actor(kind="stripe")


def _appointment(event: WebhookEvent, obj: dict[str, Any]) -> Appointment | None:
    """The appointment the metadata names, if it is this company's."""
    metadata = obj.get("metadata") or {}
    if str(metadata.get("company_id", "")) != str(event.company_id):
        logger.warning(
            "stripe event %s names company %r, not the endpoint's: ignored",
            event.dedup_key,
            metadata.get("company_id"),
        )
        return None
    appointment_id = str(metadata.get("appointment_id", ""))
    if not appointment_id.isdigit():
        return None
    return Appointment.objects.filter(pk=int(appointment_id)).first()


def _advance(payment: Payment, status: str) -> None:
    if PAYMENT_PROGRESS.index(status) > PAYMENT_PROGRESS.index(payment.status):
        payment.status = status


def _payment(
    intent_id: str, obj: dict[str, Any], appointment: Appointment | None, status: str
) -> Payment:
    payment, created = Payment.objects.select_for_update().get_or_create(
        payment_intent_id=intent_id,
        defaults={
            "appointment": appointment,
            "amount": int(obj.get("amount") or obj.get("amount_total") or 0),
            "currency": str(obj.get("currency") or "")[:3],
            "status": status,
        },
    )
    if not created:
        _advance(payment, status)
    return payment


def _settle(payment: Payment) -> None:
    payment.save()
    if payment.appointment is not None:
        deposit = {
            PaymentStatus.SUCCEEDED: "paid",
            PaymentStatus.FAILED: "failed",
            PaymentStatus.PARTIALLY_REFUNDED: "paid",
            PaymentStatus.REFUNDED: "refunded",
        }[PaymentStatus(payment.status)]
        record_deposit(payment.appointment, deposit, actor=STRIPE)


def _refund_if_unattached(
    event: WebhookEvent, obj: dict[str, Any], appointment: Appointment | None, intent_id: str
) -> None:
    """Money for one of our appointments that no longer holds its slot goes back (saga)."""
    metadata = obj.get("metadata") or {}
    ours = (
        str(metadata.get("company_id", "")) == str(event.company_id)
        and str(metadata.get("appointment_id", "")).isdigit()
    )
    if not ours or (appointment is not None and appointment.status in ACTIVE_STATUSES):
        return
    from integrations import outbox

    outbox.enqueue("deposit.refund", f"deposit.refund:{intent_id}", {"payment_intent": intent_id})
    logger.warning("payment %s has no active appointment: refund queued", intent_id)


@handles("stripe", "payment_intent.succeeded", "payment_intent.payment_failed")
def payment_intent(event: WebhookEvent) -> None:
    obj = event.payload["data"]["object"]
    appointment = _appointment(event, obj)
    if event.event_type == "payment_intent.succeeded":
        _refund_if_unattached(event, obj, appointment, str(obj["id"]))
    if appointment is None:
        return
    succeeded = event.event_type == "payment_intent.succeeded"
    status = PaymentStatus.SUCCEEDED if succeeded else PaymentStatus.FAILED
    payment = _payment(obj["id"], obj, appointment, status)
    if not succeeded:
        error = obj.get("last_payment_error") or {}
        payment.failure_message = str(error.get("message") or "")[:300]
    _settle(payment)


@handles("stripe", "checkout.session.completed")
def checkout_completed(event: WebhookEvent) -> None:
    obj = event.payload["data"]["object"]
    appointment = _appointment(event, obj)
    if obj.get("payment_status") == "paid" and obj.get("payment_intent"):
        _refund_if_unattached(event, obj, appointment, str(obj["payment_intent"]))
    if appointment is None or obj.get("payment_status") != "paid" or not obj.get("payment_intent"):
        return
    payment = _payment(obj["payment_intent"], obj, appointment, PaymentStatus.SUCCEEDED)
    payment.checkout_session_id = str(obj.get("id") or "")[:255]
    Appointment.objects.filter(pk=appointment.pk).update(
        stripe_checkout_session_id=payment.checkout_session_id,
        stripe_payment_intent_id=payment.payment_intent_id,
    )
    _settle(payment)


@handles("stripe", "charge.refunded")
def charge_refunded(event: WebhookEvent) -> None:
    obj = event.payload["data"]["object"]
    appointment = _appointment(event, obj)
    if appointment is None or not obj.get("payment_intent"):
        return
    refunded, amount = int(obj.get("amount_refunded") or 0), int(obj.get("amount") or 0)
    status = PaymentStatus.REFUNDED if refunded >= amount else PaymentStatus.PARTIALLY_REFUNDED
    payment = _payment(obj["payment_intent"], obj, appointment, status)
    payment.amount_refunded = max(payment.amount_refunded, refunded)
    _settle(payment)
