"""Request bodies AskPro sends to providers, shared by the simulator and seam tests."""

from __future__ import annotations

from typing import Any


def checkout_params(metadata: dict[str, str], *, quantity: int = 1) -> dict[str, Any]:
    """A deposit Checkout Session (2,000 cents a unit) carrying the appointment's ids."""
    return {
        "mode": "payment",
        "success_url": "https://askpro.example/paid",
        "line_items": [
            {
                "price_data": {
                    "currency": "eur",
                    "unit_amount": 2000,
                    "product_data": {"name": "Deposit"},
                },
                "quantity": quantity,
            }
        ],
        "metadata": metadata,
        "payment_intent_data": {"metadata": metadata},
    }
