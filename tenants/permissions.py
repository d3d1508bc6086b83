"""Permissions follow the role a user has in the company bound to the request.

A user can be an owner in one company and staff in another; Django's per-user
permission table can't say that, so an authentication backend grants by role.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.apps import apps
from django.contrib.auth.backends import ModelBackend

from tenants.context import current_scope
from tenants.models import Membership, Role

ACTIONS = ("view", "add", "change", "delete")
STAFF_EDITABLE = {"bookings.appointment", "bookings.customer"}


@cache
def _tenant_model_labels() -> tuple[str, ...]:
    """Every tenant model, plus the company itself and its memberships."""
    from tenants.models import TenantModel

    labels = [m._meta.label_lower for m in apps.get_models() if issubclass(m, TenantModel)]
    return (*sorted(labels), "tenants.company", "tenants.membership")


@cache
def permissions_for(role: str) -> frozenset[str]:
    """Return the permission strings (``app.action_model``) a role grants."""
    granted: set[str] = set()
    for label in _tenant_model_labels():
        app_label, model = label.split(".")
        if label == "tenants.company":
            actions: tuple[str, ...] = ("view", "change") if role == Role.OWNER else ("view",)
        elif role in (Role.OWNER, Role.MANAGER):
            actions = ACTIONS
        elif label in STAFF_EDITABLE:
            actions = ("view", "add", "change")
        else:
            actions = ("view",)
        granted |= {f"{app_label}.{action}_{model}" for action in actions}
    if role in (Role.OWNER, Role.MANAGER):
        granted |= {"auth.view_user", "auth.add_user", "auth.change_user"}
    if role == Role.OWNER:
        granted.add("auth.delete_user")
    return frozenset(granted)


def _role_attribute(company_id: int) -> str:
    return f"_askpro_role_{company_id}"


def remember_role(user: Any, company_id: int, role: str) -> None:
    """Cache the role found while resolving the company, saving the backend a query."""
    setattr(user, _role_attribute(company_id), role)


class MembershipBackend(ModelBackend):
    """Username/password login, plus permissions from the role in the bound company."""

    def _role(self, user_obj: Any) -> str | None:
        scope = current_scope()
        if scope is None or scope.company_id is None:
            return None
        cache_attr = _role_attribute(scope.company_id)
        if not hasattr(user_obj, cache_attr):
            role = (
                Membership.objects.filter(user_id=user_obj.pk, company_id=scope.company_id)
                .values_list("role", flat=True)
                .first()
            )
            setattr(user_obj, cache_attr, role)
        return getattr(user_obj, cache_attr)

    def get_all_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        # Only the role counts: per-user and group permissions are global, not per company.
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        role = self._role(user_obj)
        return set(permissions_for(role)) if role else set()

    def has_perm(self, user_obj: Any, perm: str, obj: Any = None) -> bool:
        return user_obj.is_active and perm in self.get_all_permissions(user_obj, obj)

    def has_module_perms(self, user_obj: Any, app_label: str) -> bool:
        return any(p.startswith(f"{app_label}.") for p in self.get_all_permissions(user_obj))
