"""API permissions: the user's role in the bound company decides (tenants.permissions)."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import DjangoModelPermissions
from rest_framework.request import Request


class RolePermissions(DjangoModelPermissions):
    """Model permissions, with reads needing ``view`` (DRF's default lets anyone read)."""

    perms_map = {
        **DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
    }

    def has_permission(self, request: Request, view: Any) -> bool:
        if getattr(request, "company", None) is None:
            return False
        return super().has_permission(request, view)


class ChangePermission(RolePermissions):
    """For POST actions that change an existing object (cancel, reschedule)."""

    perms_map = {**RolePermissions.perms_map, "POST": ["%(app_label)s.change_%(model_name)s"]}
