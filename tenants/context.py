"""The tenant bound to the current unit of work (request, task, command).

One ``ContextVar`` holds either a company id or the explicit cross-tenant bypass.
Every tenant model consults it through :func:`require_scope`; nothing else decides
which company a query belongs to.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterator, Mapping
from contextlib import ContextDecorator, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    from tenants.models import Company

logger = logging.getLogger(__name__)


class TenantNotSet(RuntimeError):
    """A tenant model was used while no tenant was bound."""


class TenantMismatch(RuntimeError):
    """A row of one company was written while another company was bound."""


@dataclass(frozen=True, slots=True)
class Scope:
    """What the current unit of work may see: one company, or every company."""

    company_id: int | None
    reason: str = ""

    @property
    def is_bypass(self) -> bool:
        return self.company_id is None


_scope: contextvars.ContextVar[Scope | None] = contextvars.ContextVar(
    "askpro_tenant_scope", default=None
)


def _set(scope: Scope | None) -> tuple[contextvars.Token[Scope | None], Mapping[str, Any]]:
    """Bind ``scope``, and its company id on every log line of the unit of work."""
    log_tokens = structlog.contextvars.bind_contextvars(
        company_id=scope.company_id if scope is not None else None
    )
    return _scope.set(scope), log_tokens


def label_logs(company_id: int | None) -> None:
    """Name the company on every later log line of this request or task -- the access
    line included, which is written after the view's tenant binding has ended."""
    structlog.contextvars.bind_contextvars(company_id=company_id)


def _reset(token: contextvars.Token[Scope | None], log_tokens: Mapping[str, Any]) -> None:
    _scope.reset(token)
    structlog.contextvars.reset_contextvars(**log_tokens)


def _company_id_of(company_or_id: Company | int) -> int:
    company_id = getattr(company_or_id, "pk", company_or_id)
    if isinstance(company_id, bool) or not isinstance(company_id, int):
        raise TypeError(f"tenant_context needs a Company or an int id, got {company_or_id!r}")
    return company_id


class _ScopeBinding(ContextDecorator):
    """Bind a scope for a ``with`` block or a decorated function.

    Each decorated call gets a fresh binding (``_recreate_cm``), so one decorator is
    safe across threads and recursion; leaving restores whatever was bound before.
    """

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self._token: contextvars.Token[Scope | None] | None = None
        self._log_tokens: Mapping[str, Any] = {}

    def _recreate_cm(self) -> _ScopeBinding:
        return _ScopeBinding(self.scope)

    def __enter__(self) -> Scope:
        if self._token is not None:
            raise RuntimeError("a tenant binding can't be entered twice; make a new one")
        if self.scope.is_bypass:
            logger.info("tenant bypass opened: %s", self.scope.reason)
        self._token, self._log_tokens = _set(self.scope)
        return self.scope

    def __exit__(self, *exc: object) -> None:
        assert self._token is not None
        _reset(self._token, self._log_tokens)
        self._token = None


def tenant_context(company_or_id: Company | int) -> _ScopeBinding:
    """Bind one company; usable as ``with tenant_context(c):`` or ``@tenant_context(c)``."""
    return _ScopeBinding(Scope(company_id=_company_id_of(company_or_id)))


def all_tenants(reason: str) -> _ScopeBinding:
    """Open the explicit cross-tenant bypass; the reason is logged on every entry."""
    if not reason or not reason.strip():
        raise ValueError("all_tenants() needs a reason")
    return _ScopeBinding(Scope(company_id=None, reason=reason))


def current_scope() -> Scope | None:
    """Return the bound scope, or ``None`` when nothing is bound."""
    return _scope.get()


def require_scope() -> Scope:
    """Return the bound scope or raise :class:`TenantNotSet`."""
    scope = _scope.get()
    if scope is None:
        raise TenantNotSet(
            "No tenant is bound: wrap the work in tenant_context(company) or all_tenants(reason)."
        )
    return scope


def current_company_id() -> int:
    """Return the bound company's id; the bypass has none, so it raises too."""
    scope = require_scope()
    if scope.company_id is None:
        raise TenantNotSet(f"No single tenant is bound (bypass: {scope.reason}).")
    return scope.company_id


@contextmanager
def no_tenant() -> Iterator[None]:
    """Unbind any scope for a block: the state a fresh request or task starts in."""
    tokens = _set(None)
    try:
        yield
    finally:
        _reset(*tokens)


def copy_scope(fn: Any) -> Any:
    """Run ``fn`` later (e.g. ``on_commit``) under the scope bound now."""
    scope = _scope.get()

    def run(*args: Any, **kwargs: Any) -> Any:
        tokens = _set(scope)
        try:
            return fn(*args, **kwargs)
        finally:
            _reset(*tokens)

    return run
