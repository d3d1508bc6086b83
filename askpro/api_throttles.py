"""API throttles. Both read and write the default cache, which ignores Redis errors:
during a Redis outage they fail open rather than refusing staff their work."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle, UserRateThrottle


class CompanyRateThrottle(SimpleRateThrottle):
    """One budget per company, shared by all its users and tokens."""

    scope = "company"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        company = getattr(request, "company", None)
        if company is None:
            return None
        return self.cache_format % {"scope": self.scope, "ident": company.pk}


__all__ = ["CompanyRateThrottle", "UserRateThrottle"]
