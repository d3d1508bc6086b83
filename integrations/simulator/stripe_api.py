"""Stripe API v1 subset: Checkout Sessions, PaymentIntents, Refunds, webhook endpoints.

Form-encoded requests (bracket notation), ``Authorization: Bearer sk_...``, idempotency
keys (same key and request -> stored answer replayed with ``Idempotent-Replayed: true``;
same key, other request -> 400 ``idempotency_error``; only answers < 400 are stored).
A payment-mode session has no PaymentIntent until it is paid (Stripe's behaviour since
API 2022-08-01): paying creates a succeeded PaymentIntent and its charge and sends
``checkout.session.completed`` and ``payment_intent.succeeded``; a refund sends
``charge.refunded``; expiring sends ``checkout.session.expired``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .common import (
    ApiError,
    Context,
    SimRequest,
    SimResponse,
    Target,
    clone,
    now_s,
    rand_alnum,
    visible,
)
from .forms import parse_form

API_VERSION = "2025-10-29.clover"
COLLECTIONS = ("checkout_sessions", "payment_intents", "charges", "refunds", "webhook_endpoints")

Handler = Callable[[str, dict[str, Any], list[str]], tuple[int, dict[str, Any]]]


def error_body(exc: ApiError) -> dict[str, Any]:
    error: dict[str, Any] = {
        "type": exc.extra.get("type", "invalid_request_error"),
        "message": exc.message,
    }
    if exc.code:
        error["code"] = exc.code
    if exc.extra.get("param"):
        error["param"] = exc.extra["param"]
    return {"error": error}


def fault_body(status: int) -> dict[str, Any]:
    """The error a fault answers with, shaped like Stripe's."""
    if status == 429:
        exc = ApiError(429, "Request rate limit exceeded (simulated).", "rate_limit")
    elif status >= 500:
        exc = ApiError(status, "Simulated Stripe failure.", type="api_error")
    else:
        exc = ApiError(status, "Simulated Stripe error.")
    return error_body(exc)


def _missing(param: str) -> ApiError:
    return ApiError(400, f"Missing required param: {param}.", "parameter_missing", param=param)


def _int(params: dict[str, Any], name: str, required: bool = True) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise _missing(name)
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(
            400, f"Invalid integer: {value}", "parameter_invalid_integer", param=name
        ) from None


def _metadata(value: Any) -> dict[str, str]:
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise ApiError(400, "Invalid object", "parameter_invalid_empty", param="metadata")
    return {str(k): str(v) for k, v in value.items()}


class StripeApi:
    """Handlers of ``/stripe/...``; call ``handle`` with the context lock held."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("POST", re.compile(r"/v1/checkout/sessions"), self.create_session),
            ("GET", re.compile(r"/v1/checkout/sessions/([^/]+)"), self.get_session),
            ("POST", re.compile(r"/v1/checkout/sessions/([^/]+)/expire"), self.expire_session),
            ("POST", re.compile(r"/v1/payment_intents"), self.create_payment_intent),
            ("GET", re.compile(r"/v1/payment_intents/([^/]+)"), self.get_payment_intent),
            ("POST", re.compile(r"/v1/refunds"), self.create_refund),
            ("GET", re.compile(r"/v1/refunds/([^/]+)"), self.get_refund),
            ("POST", re.compile(r"/v1/webhook_endpoints"), self.create_endpoint),
            ("GET", re.compile(r"/v1/webhook_endpoints"), self.list_endpoints),
            ("DELETE", re.compile(r"/v1/webhook_endpoints/([^/]+)"), self.delete_endpoint),
        ]

    @property
    def s(self) -> dict[str, Any]:
        stripe_state: dict[str, Any] = self.ctx.state["stripe"]
        return stripe_state

    # -- entry -----------------------------------------------------------------------
    def handle(self, req: SimRequest) -> SimResponse:
        headers = {"Request-Id": f"req_{rand_alnum(14)}"}
        try:
            pay = re.fullmatch(r"/pay/([^/]+)", req.path)
            if pay and req.method == "GET":
                return self._pay_page(pay.group(1))
            key = req.bearer()
            if not key or not key.startswith(("sk_", "rk_")):
                raise ApiError(
                    401,
                    "You did not provide a valid API key. Use 'Authorization: Bearer sk_...'.",
                )
            if req.parse_error:
                raise ApiError(400, f"Invalid request body: {req.parse_error}")
            if req.method == "POST":
                params = req.body if isinstance(req.body, dict) else {}
            else:
                params = parse_form(req.query_pairs)
            idem = req.headers.get("idempotency-key") if req.method == "POST" else None
            if idem:
                stored = self.s["idempotency"].get(f"{key}:{idem}")
                if stored is not None:
                    if (stored["method"], stored["path"], stored["params"]) != (
                        req.method,
                        req.path,
                        params,
                    ):
                        raise ApiError(
                            400,
                            "Keys for idempotent requests can only be used with the same "
                            f"parameters they were first used with. Try using a key other than "
                            f"'{idem}' if you meant to execute a different request.",
                            type="idempotency_error",
                        )
                    headers["Idempotent-Replayed"] = "true"
                    headers["Idempotency-Key"] = idem
                    return SimResponse(stored["status"], clone(stored["body"]), headers)
            status, body = self._route(req, key, params)
            body = self._expand(body, params.get("expand"))
            if idem:
                headers["Idempotency-Key"] = idem
                if status < 400:
                    self.s["idempotency"][f"{key}:{idem}"] = {
                        "method": req.method,
                        "path": req.path,
                        "params": clone(params),
                        "status": status,
                        "body": clone(body),
                    }
            return SimResponse(status, body, headers)
        except ApiError as exc:
            return SimResponse(exc.status, error_body(exc), headers)

    def _route(
        self, req: SimRequest, key: str, params: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        path_known = False
        for method, pattern, handler in self.routes:
            match = pattern.fullmatch(req.path)
            if match:
                path_known = True
                if method == req.method:
                    return handler(key, params, list(match.groups()))
        if path_known:
            raise ApiError(405, f"Method {req.method} not allowed on {req.path}")
        raise ApiError(404, f"Unrecognized request URL ({req.method}: {req.path}).")

    # -- helpers ---------------------------------------------------------------------
    def _own(self, obj: dict[str, Any], key: str | None) -> dict[str, Any]:
        if key is not None:
            self.s["owners"][obj["id"]] = key
        return obj

    def _get(self, collection: str, obj_id: str, key: str | None, kind: str) -> dict[str, Any]:
        obj: dict[str, Any] | None = self.s[collection].get(obj_id)
        if obj is None or (key is not None and not visible(self.s["owners"], obj_id, key)):
            raise ApiError(404, f"No such {kind}: '{obj_id}'", "resource_missing", param="id")
        return obj

    def _expand(self, body: dict[str, Any], expand: Any) -> dict[str, Any]:
        if not expand:
            return body
        paths = expand if isinstance(expand, list) else [expand]
        body = clone(body)
        for path in paths:
            self._expand_path(body, str(path).split("."))
        return body

    def _expand_path(self, obj: dict[str, Any], parts: list[str]) -> None:
        value = obj.get(parts[0])
        if isinstance(value, str):
            for collection in COLLECTIONS:
                if value in self.s[collection]:
                    value = obj[parts[0]] = clone(self.s[collection][value])
                    break
        if isinstance(value, dict) and len(parts) > 1:
            self._expand_path(value, parts[1:])

    def _event(
        self, event_type: str, obj: dict[str, Any], idem: str | None = None
    ) -> dict[str, Any]:
        owner = self.s["owners"].get(obj["id"])
        targets = self.ctx.targets("stripe")
        for endpoint in self.s["webhook_endpoints"].values():
            endpoint_owner = self.s["owners"].get(endpoint["id"])
            events = endpoint["enabled_events"]
            if (
                endpoint["status"] == "enabled"
                and (owner is None or endpoint_owner in (None, owner))
                and ("*" in events or event_type in events)
            ):
                targets.append(Target("stripe", endpoint["url"], endpoint["_secret"]))
        event = {
            "id": f"evt_{rand_alnum(24)}",
            "object": "event",
            "api_version": API_VERSION,
            "created": now_s(),
            "data": {"object": clone(obj)},
            "livemode": False,
            "pending_webhooks": len(targets),
            "request": {"id": None, "idempotency_key": idem},
            "type": event_type,
        }
        self.s["events"][event["id"]] = event
        self.ctx.emit("stripe", event_type, event, targets)
        return event

    # -- checkout sessions -----------------------------------------------------------
    def create_session(
        self, key: str, p: dict[str, Any], _: list[str]
    ) -> tuple[int, dict[str, Any]]:
        mode = p.get("mode")
        if not mode:
            raise _missing("mode")
        if mode != "payment":
            raise ApiError(400, "The simulator supports only mode=payment.", param="mode")
        items = p.get("line_items")
        if not isinstance(items, list) or not items:
            raise _missing("line_items")
        total, currency = 0, None
        for i, item in enumerate(items):
            price = item.get("price_data") if isinstance(item, dict) else None
            if not isinstance(price, dict):
                raise _missing(f"line_items[{i}][price_data]")
            unit = _int(price, "unit_amount")
            quantity = _int(item, "quantity")
            item_currency = str(price.get("currency") or "").lower()
            if not item_currency:
                raise _missing(f"line_items[{i}][price_data][currency]")
            if currency not in (None, item_currency):
                raise ApiError(400, "All line items must use the same currency.")
            currency = item_currency
            total += (unit or 0) * (quantity or 0)
        now = now_s()
        session_id = f"cs_test_{rand_alnum(58)}"
        pi_data = p.get("payment_intent_data")
        pi_data = pi_data if isinstance(pi_data, dict) else {}
        self.s["session_pi_data"][session_id] = {
            "metadata": _metadata(pi_data.get("metadata")),
            "description": pi_data.get("description"),
        }
        session = {
            "id": session_id,
            "object": "checkout.session",
            "amount_subtotal": total,
            "amount_total": total,
            "cancel_url": p.get("cancel_url"),
            "client_reference_id": p.get("client_reference_id"),
            "created": now,
            "currency": currency,
            "customer": p.get("customer"),
            "customer_details": None,
            "customer_email": p.get("customer_email"),
            "expires_at": _int(p, "expires_at", required=False) or now + 24 * 3600,
            "livemode": False,
            "locale": p.get("locale"),
            "metadata": _metadata(p.get("metadata")),
            "mode": "payment",
            "payment_intent": None,
            "payment_method_types": ["card"],
            "payment_status": "unpaid",
            "status": "open",
            "success_url": p.get("success_url"),
            "ui_mode": "hosted",
            "url": f"{self.ctx.url}/stripe/pay/{session_id}",
        }
        self.s["checkout_sessions"][session_id] = self._own(session, key)
        return 200, clone(session)

    def get_session(self, key: str, _: dict[str, Any], g: list[str]) -> tuple[int, dict[str, Any]]:
        return 200, clone(self._get("checkout_sessions", g[0], key, "checkout.session"))

    def expire_session(
        self, key: str, _: dict[str, Any], g: list[str]
    ) -> tuple[int, dict[str, Any]]:
        session = self._get("checkout_sessions", g[0], key, "checkout.session")
        if session["status"] != "open":
            raise ApiError(
                400,
                f'Only Checkout Sessions with a status in ["open"] can be expired. This '
                f'Checkout Session has a status of "{session["status"]}".',
                "checkout_session_unexpected_state",
            )
        session.update(status="expired", url=None)
        self._event("checkout.session.expired", session)
        return 200, clone(session)

    def pay_session(self, session_id: str) -> dict[str, Any]:
        """Complete an open session: PaymentIntent + charge, then the two events."""
        session = self._get("checkout_sessions", session_id, None, "checkout.session")
        if session["status"] != "open":
            raise ApiError(
                400,
                f"Checkout Session {session_id} is {session['status']}, not open.",
                "checkout_session_unexpected_state",
            )
        owner = self.s["owners"].get(session_id)
        pi_data = self.s["session_pi_data"].get(session_id, {})
        pi = self._new_payment_intent(
            owner, session["amount_total"], session["currency"], pi_data.get("metadata", {})
        )
        pi["description"] = pi_data.get("description")
        self._succeed(pi)
        session.update(
            status="complete",
            payment_status="paid",
            payment_intent=pi["id"],
            url=None,
            customer_details={
                "email": session.get("customer_email") or "customer@example.com",
                "name": "Simulated Customer",
                "phone": None,
                "address": None,
                "tax_exempt": "none",
                "tax_ids": [],
            },
        )
        self._event("checkout.session.completed", session)
        self._event("payment_intent.succeeded", pi)
        return clone(session)

    def _pay_page(self, session_id: str) -> SimResponse:
        try:
            self.pay_session(session_id)
            text = f"<h1>Paid</h1><p>Checkout Session {session_id} is complete.</p>"
            status = 200
        except ApiError as exc:
            text, status = f"<h1>Cannot pay</h1><p>{exc.message}</p>", exc.status
        return SimResponse(status, raw=text.encode(), content_type="text/html; charset=utf-8")

    # -- payment intents and charges -------------------------------------------------
    def _new_payment_intent(
        self, owner: str | None, amount: int, currency: str, metadata: dict[str, str]
    ) -> dict[str, Any]:
        pi_id = f"pi_{rand_alnum(24)}"
        pi = {
            "id": pi_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_capturable": 0,
            "amount_received": 0,
            "capture_method": "automatic",
            "client_secret": f"{pi_id}_secret_{rand_alnum(24)}",
            "confirmation_method": "automatic",
            "created": now_s(),
            "currency": currency,
            "customer": None,
            "description": None,
            "last_payment_error": None,
            "latest_charge": None,
            "livemode": False,
            "metadata": metadata,
            "payment_method": None,
            "payment_method_types": ["card"],
            "status": "requires_payment_method",
        }
        self.s["payment_intents"][pi_id] = self._own(pi, owner)
        return pi

    def _succeed(self, pi: dict[str, Any]) -> dict[str, Any]:
        charge_id = f"ch_{rand_alnum(24)}"
        charge = {
            "id": charge_id,
            "object": "charge",
            "amount": pi["amount"],
            "amount_captured": pi["amount"],
            "amount_refunded": 0,
            "balance_transaction": f"txn_{rand_alnum(24)}",
            "captured": True,
            "created": now_s(),
            "currency": pi["currency"],
            "customer": pi["customer"],
            "description": pi["description"],
            "livemode": False,
            "metadata": dict(pi["metadata"]),
            "paid": True,
            "payment_intent": pi["id"],
            "payment_method": f"pm_{rand_alnum(24)}",
            "refunded": False,
            "refunds": {
                "object": "list",
                "data": [],
                "has_more": False,
                "total_count": 0,
                "url": f"/v1/charges/{charge_id}/refunds",
            },
            "status": "succeeded",
        }
        self.s["charges"][charge_id] = self._own(charge, self.s["owners"].get(pi["id"]))
        pi.update(
            status="succeeded",
            amount_received=pi["amount"],
            latest_charge=charge_id,
            payment_method=charge["payment_method"],
        )
        return charge

    def create_payment_intent(
        self, key: str, p: dict[str, Any], _: list[str]
    ) -> tuple[int, dict[str, Any]]:
        amount = _int(p, "amount") or 0
        if amount < 1:
            raise ApiError(400, "Amount must be at least 1.", "amount_too_small", param="amount")
        currency = str(p.get("currency") or "").lower()
        if not currency:
            raise _missing("currency")
        pi = self._new_payment_intent(key, amount, currency, _metadata(p.get("metadata")))
        pi["description"] = p.get("description")
        return 200, clone(pi)

    def get_payment_intent(
        self, key: str, _: dict[str, Any], g: list[str]
    ) -> tuple[int, dict[str, Any]]:
        return 200, clone(self._get("payment_intents", g[0], key, "payment_intent"))

    # -- refunds ---------------------------------------------------------------------
    def create_refund(
        self, key: str, p: dict[str, Any], _: list[str]
    ) -> tuple[int, dict[str, Any]]:
        if p.get("charge"):
            charge = self._get("charges", str(p["charge"]), key, "charge")
        elif p.get("payment_intent"):
            pi = self._get("payment_intents", str(p["payment_intent"]), key, "payment_intent")
            if pi["status"] != "succeeded" or not pi["latest_charge"]:
                raise ApiError(
                    400,
                    f"This PaymentIntent ({pi['id']}) does not have a successful charge to refund.",
                    "charge_not_refundable",
                )
            charge = self.s["charges"][pi["latest_charge"]]
        else:
            raise ApiError(
                400,
                "One of the following params should be provided for this "
                "request: payment_intent or charge.",
                "parameter_missing",
            )
        remaining = charge["amount_captured"] - charge["amount_refunded"]
        if remaining <= 0:
            raise ApiError(
                400,
                f"Charge {charge['id']} has already been refunded.",
                "charge_already_refunded",
            )
        amount = _int(p, "amount", required=False)
        amount = remaining if amount is None else amount
        if amount < 1 or amount > remaining:
            raise ApiError(
                400,
                f"Refund amount ({amount}) is greater than unrefunded amount on charge "
                f"({remaining})",
                "amount_too_large",
                param="amount",
            )
        refund_id = f"re_{rand_alnum(24)}"
        refund = {
            "id": refund_id,
            "object": "refund",
            "amount": amount,
            "balance_transaction": f"txn_{rand_alnum(24)}",
            "charge": charge["id"],
            "created": now_s(),
            "currency": charge["currency"],
            "metadata": _metadata(p.get("metadata")),
            "payment_intent": charge["payment_intent"],
            "reason": p.get("reason"),
            "receipt_number": None,
            "status": "succeeded",
        }
        self.s["refunds"][refund_id] = self._own(refund, key)
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount_captured"]
        charge["refunds"]["data"].insert(0, clone(refund))
        charge["refunds"]["total_count"] += 1
        self._event("charge.refunded", charge)
        return 200, clone(refund)

    def get_refund(self, key: str, _: dict[str, Any], g: list[str]) -> tuple[int, dict[str, Any]]:
        return 200, clone(self._get("refunds", g[0], key, "refund"))

    # -- webhook endpoints -----------------------------------------------------------
    @staticmethod
    def _public_endpoint(endpoint: dict[str, Any]) -> dict[str, Any]:
        return {k: clone(v) for k, v in endpoint.items() if not k.startswith("_")}

    def create_endpoint(
        self, key: str, p: dict[str, Any], _: list[str]
    ) -> tuple[int, dict[str, Any]]:
        if not p.get("url"):
            raise _missing("url")
        events = p.get("enabled_events")
        if not isinstance(events, list) or not events:
            raise _missing("enabled_events")
        endpoint_id = f"we_{rand_alnum(24)}"
        secret = f"whsec_{rand_alnum(32)}"
        endpoint = {
            "id": endpoint_id,
            "object": "webhook_endpoint",
            "api_version": p.get("api_version"),
            "application": None,
            "created": now_s(),
            "description": p.get("description"),
            "enabled_events": [str(e) for e in events],
            "livemode": False,
            "metadata": _metadata(p.get("metadata")),
            "status": "enabled",
            "url": str(p["url"]),
            "_secret": secret,
        }
        self.s["webhook_endpoints"][endpoint_id] = self._own(endpoint, key)
        return 200, {**self._public_endpoint(endpoint), "secret": secret}

    def list_endpoints(
        self, key: str, _: dict[str, Any], __: list[str]
    ) -> tuple[int, dict[str, Any]]:
        data = [
            self._public_endpoint(e)
            for e in reversed(self.s["webhook_endpoints"].values())
            if visible(self.s["owners"], e["id"], key)
        ]
        return 200, {
            "object": "list",
            "data": data,
            "has_more": False,
            "url": "/v1/webhook_endpoints",
        }

    def delete_endpoint(
        self, key: str, _: dict[str, Any], g: list[str]
    ) -> tuple[int, dict[str, Any]]:
        self._get("webhook_endpoints", g[0], key, "webhook_endpoint")
        del self.s["webhook_endpoints"][g[0]]
        return 200, {"id": g[0], "object": "webhook_endpoint", "deleted": True}
