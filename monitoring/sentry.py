"""Optional error reporting: Sentry when ``SENTRY_DSN`` is set, with no personal data.

Events pass through the same redaction as log lines before they leave the process.
"""

from __future__ import annotations

from typing import Any

from monitoring.redaction import redact_value


def scrub(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    """``before_send``: mask secrets, phone numbers and e-mails anywhere in the event."""
    return redact_value(event)


def configure(dsn: str, environment: str) -> None:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        send_default_pii=False,
        include_local_variables=False,  # frames' locals hold keys and customers' data
        traces_sample_rate=0.0,
        before_send=scrub,  # type: ignore[arg-type]
    )
