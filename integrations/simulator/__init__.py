"""Local stand-ins for Cal.com API v2, Retell and Stripe, with fault injection.

Plain Python (no Django). One threaded HTTP server answers under
``/calcom`` (and ``/calcom/v2``), ``/retell``, ``/stripe`` and ``/_sim/`` (control)::

    with ProviderSimulator() as sim:            # ephemeral port, daemon threads
        stripe.StripeClient("sk_test_x", base_addresses={"api": sim.base("stripe")})
        retell.Retell(api_key="key_x", base_url=sim.base("retell"))
        sim.set_fault("calcom", error_rate=1.0, times=2)   # fail twice, then recover
        sim.add_webhook_target("stripe", "http://127.0.0.1:8000/webhooks/stripe/<id>/", "whsec_x")
        sim.pay_checkout_session(session_id)    # sends checkout.session.completed + pi.succeeded
        sim.wait_for_webhooks()
        sim.requests("stripe"), sim.deliveries

Faults (``set_fault`` or ``PUT /_sim/faults/<provider>``): ``latency_ms``, ``outage``
(``true``/``"reset"`` drops the connection, ``"503"``, ``"timeout"`` holds 30 s),
``rate_limit={"retry_after": N}`` (429), ``error_rate`` with ``error_status``
(deterministic: 1.0 fails every request), ``times`` (next N requests only).
Precedence outage > rate_limit > error_rate; latency always applies.

Control API: ``GET|DELETE /_sim/faults``, ``PUT|DELETE /_sim/faults/<provider>``,
``GET|DELETE /_sim/requests[?provider=]``, ``GET /_sim/deliveries``, ``POST /_sim/reset``,
``GET /_sim/state``, ``POST /_sim/webhooks {provider, url, secret}``,
``POST /_sim/stripe/checkout_sessions/<id>/pay``.

Drift for reconciliation tests: ``sim.calcom_cancel_silently(uid)`` cancels a booking with
no webhook; ``with sim.silenced("calcom"): ...`` drops every webhook the block causes
(recorded in ``deliveries`` with ``error="silenced"``). Seed state under ``sim.lock``:
``sim.state["calcom"]["event_types"][1187] = {"id": 1187, "title": "Cut", "slug": "cut",
"lengthInMinutes": 30}``, ``sim.state["calcom"]["busy"].append({"start": iso, "end": iso})``.
"""

from __future__ import annotations

from .server import ProviderSimulator
from .signing import sign_calcom, sign_retell, sign_stripe

__all__ = ["ProviderSimulator", "sign_calcom", "sign_retell", "sign_stripe"]
