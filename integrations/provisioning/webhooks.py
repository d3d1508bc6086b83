"""A company's three webhook endpoints, registered with the providers that need it.

- Retell: the secret is the company's Retell API key (Retell signs with it); there is
  nothing to register — each agent carries its webhook URL (`provision_agent`).
- Cal.com: we make the secret and give it to Cal.com with the subscriber URL.
- Stripe: Stripe makes the secret, and shows it only when the endpoint is created.

Idempotent: a re-run finds what it registered (remote ids in `Integration.remote`, else
the URL) and keeps secrets, so signatures keep verifying.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from integrations.clients.calcom import CalcomClient
from integrations.clients.stripe import StripeClient
from integrations.credentials import Credentials, credentials_for, remember_remote
from integrations.deadline import Deadline
from integrations.errors import IntegrationError
from integrations.provisioning.definition import public_url
from tenants.context import tenant_context
from tenants.models import Company
from webhooks.models import Provider, WebhookEndpoint

DEADLINE_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Registration:
    provider: str
    action: str  # created, updated, unchanged, skipped, failed
    detail: str

    def __str__(self) -> str:
        return f"{self.provider:<7} {self.action:<9} {self.detail}"


def retell_endpoint(credentials: Credentials) -> tuple[WebhookEndpoint, list[str]]:
    """The company's Retell endpoint, made to match its API key; not saved.

    Returns the endpoint and the fields that differ from the stored row (all of them
    for a new, unsaved one). A rotated Retell key moves the secret with it.
    """
    endpoint = WebhookEndpoint.objects.filter(provider=Provider.RETELL).first()
    if endpoint is None:
        made = WebhookEndpoint(provider=Provider.RETELL, secret=credentials.api_key)
        return made, ["secret", "active"]
    changed = []
    if endpoint.secret != credentials.api_key:
        endpoint.secret = credentials.api_key
        changed.append("secret")
    if not endpoint.active:
        endpoint.active = True
        changed.append("active")
    return endpoint, changed


def _register_retell() -> Registration:
    credentials = credentials_for("retell")
    if credentials is None:
        return Registration("retell", "skipped", "no Retell API key (connect_provider first)")
    endpoint, changed = retell_endpoint(credentials)
    action = "created" if endpoint._state.adding else "updated" if changed else "unchanged"
    if changed:
        endpoint.save()
    detail = f"{public_url(endpoint.path)} (agents get it from provision_agent)"
    if "secret" in changed and action == "updated":
        detail += "; secret now the current API key"
    return Registration("retell", action, detail)


def _register_calcom(deadline: Deadline) -> Registration:
    credentials = credentials_for("calcom")
    if credentials is None:
        return Registration("calcom", "skipped", "no Cal.com API key (connect_provider first)")
    endpoint, _ = WebhookEndpoint.objects.get_or_create(
        provider=Provider.CALCOM, defaults={"secret": secrets.token_urlsafe(32)}
    )
    url = public_url(endpoint.path)
    known = credentials.remote.get("webhook_id")
    hook = CalcomClient(credentials, deadline).upsert_webhook(
        url=url, secret=endpoint.secret, webhook_id=known
    )
    remember_remote("calcom", webhook_id=hook["id"])
    action = "created" if known is None else "updated"
    return Registration("calcom", action, f"webhook {hook['id']} → {url}")


def _register_stripe(deadline: Deadline) -> Registration:
    credentials = credentials_for("stripe")
    if credentials is None:
        return Registration("stripe", "skipped", "no Stripe API key (connect_provider first)")
    endpoint = WebhookEndpoint.objects.filter(provider=Provider.STRIPE).first()
    new_row = endpoint is None
    if endpoint is None:
        # Not saved until Stripe gives us its secret; the id (and so the URL) exists now.
        endpoint = WebhookEndpoint(provider=Provider.STRIPE)
    url = public_url(endpoint.path)
    known = credentials.remote.get("webhook_endpoint_id")
    # A new row has a new URL: only a URL match (none) may stand for it at Stripe.
    remote_id, secret = StripeClient(credentials, deadline).upsert_webhook_endpoint(
        url=url, endpoint_id=None if new_row else known
    )
    remember_remote("stripe", webhook_endpoint_id=remote_id)
    if secret is None:
        return Registration("stripe", "unchanged", f"endpoint {remote_id} → {url}")
    endpoint.secret, endpoint.active = secret, True
    endpoint.save()
    detail = f"endpoint {remote_id} → {url}"
    if new_row and known and known != remote_id:
        detail += f" (endpoint {known} at Stripe points at a deleted URL: remove it there)"
    return Registration("stripe", "created", detail)


def register_webhooks(company: Company, *, deadline: Deadline | None = None) -> list[Registration]:
    """Ensure the company's three endpoints and register them.

    Providers without a key are skipped; a provider that fails is reported as `failed`
    and the others still run.
    """
    deadline = deadline or Deadline.after(DEADLINE_SECONDS)
    done = []
    with tenant_context(company):
        done.append(_register_retell())
        for provider, register in (("calcom", _register_calcom), ("stripe", _register_stripe)):
            try:
                done.append(register(deadline))
            except IntegrationError as exc:  # the other provider still gets its turn
                done.append(Registration(provider, "failed", str(exc)))
    return done
