"""Stripe through the official package: deposits (Checkout), refunds, webhook endpoints.

Idempotency keys come from the operation (the company and the appointment or payment),
never from the attempt: an outer retry — ours, a Celery redelivery, a rerun saga —
reaches Stripe with the same key and gets the first answer back, never a second charge.
Charges go to the company's connected account when `Credentials.account` is set.
"""

from __future__ import annotations

from typing import Any

from integrations import sdk
from integrations.credentials import Credentials
from integrations.deadline import Deadline

WEBHOOK_EVENTS = [
    "checkout.session.completed",
    "checkout.session.expired",
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "charge.refunded",
]


def deposit_key(company_id: int, appointment_id: int) -> str:
    return f"askpro-{company_id}-appointment-{appointment_id}-deposit"


def refund_key(company_id: int, payment_intent: str) -> str:
    return f"askpro-{company_id}-refund-{payment_intent}"


class StripeClient:
    def __init__(self, credentials: Credentials, deadline: Deadline) -> None:
        self.client = sdk.stripe_client(credentials.api_key, account=credentials.account or None)
        self.deadline = deadline

    def create_deposit_checkout(
        self,
        *,
        company_id: int,
        appointment_id: int,
        amount_cents: int,
        currency: str,
        description: str,
        success_url: str,
        cancel_url: str,
    ) -> Any:
        """A Checkout Session for an appointment's deposit, tagged with both ids."""
        metadata = {"appointment_id": str(appointment_id), "company_id": str(company_id)}
        params: dict[str, Any] = {
            "mode": "payment",
            "success_url": success_url,
            "cancel_url": cancel_url,
            "line_items": [
                {
                    "price_data": {
                        "currency": currency.lower(),
                        "unit_amount": amount_cents,
                        "product_data": {"name": description},
                    },
                    "quantity": 1,
                }
            ],
            "metadata": metadata,
            "payment_intent_data": {"metadata": metadata},
        }
        options = {"idempotency_key": deposit_key(company_id, appointment_id)}
        return sdk.call(
            "stripe",
            "create_checkout",
            self.deadline,
            lambda: self.client.v1.checkout.sessions.create(params=params, options=options),  # type: ignore[arg-type]
        )

    def checkout(self, session_id: str) -> Any:
        return sdk.call(
            "stripe",
            "get_checkout",
            self.deadline,
            lambda: self.client.v1.checkout.sessions.retrieve(session_id),
        )

    def refund(self, *, company_id: int, payment_intent: str) -> Any:
        """Refund a payment in full, once, however often this is called."""
        options = {"idempotency_key": refund_key(company_id, payment_intent)}
        return sdk.call(
            "stripe",
            "refund",
            self.deadline,
            lambda: self.client.v1.refunds.create(
                params={"payment_intent": payment_intent},
                options=options,  # type: ignore[arg-type]
            ),
        )

    def upsert_webhook_endpoint(
        self, *, url: str, endpoint_id: str | None
    ) -> tuple[str, str | None]:
        """Our endpoint at Stripe: (its id, its signing secret when newly created, else None).

        Stripe shows a secret only at creation: an existing endpoint (by id or URL) is
        left as it is and keeps the secret we stored then.
        """
        existing = sdk.call(
            "stripe",
            "list_webhooks",
            self.deadline,
            lambda: self.client.v1.webhook_endpoints.list(params={"limit": 100}),
        )
        for endpoint in existing.data:
            if endpoint.id == endpoint_id or endpoint.url == url:
                return str(endpoint.id), None
        created = sdk.call(
            "stripe",
            "create_webhook",
            self.deadline,
            lambda: self.client.v1.webhook_endpoints.create(
                params={"url": url, "enabled_events": WEBHOOK_EVENTS}  # type: ignore[typeddict-item]
            ),
        )
        return str(created.id), str(created.secret)
