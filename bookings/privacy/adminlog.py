"""Django's admin history (``LogEntry``): each entry names its object (``object_repr``,
e.g. a customer's name) and has no company column, so entries are matched to the bound
company through the object they name, or the member of it who made them."""

from __future__ import annotations

from typing import Any

from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Q

from bookings.privacy.needles import ERASED, Needles
from tenants.context import all_tenants, current_company_id
from tenants.models import Membership, TenantModel


def _describe(model: type[models.Model], object_id: str) -> str:
    try:
        obj = model._default_manager.filter(pk=object_id).first()
    except (ValueError, TypeError):
        obj = None
    return str(obj)[:200] if obj is not None else ERASED


def _exists(model: type[models.Model], object_id: str) -> bool:
    try:
        return model._default_manager.filter(pk=object_id).exists()
    except (ValueError, TypeError):
        return False


def _ours(entry: LogEntry) -> bool:
    """The entry names an object of the bound company; or its object is gone (or not a
    tenant's) and a member of the company made it."""
    content_type_id = entry.content_type_id
    model = (
        ContentType.objects.get_for_id(content_type_id).model_class() if content_type_id else None
    )
    if model is not None and issubclass(model, TenantModel) and entry.object_id:
        if _exists(model, entry.object_id):
            return True
        # One yes/no across tenants: an entry about another company's object is theirs.
        with all_tenants("forget_customer: whose object an admin log entry names"):
            if _exists(model, entry.object_id):
                return False
    return Membership.objects.filter(
        user_id=entry.user_id, company_id=current_company_id()
    ).exists()


def _save(entry: LogEntry, repr_: str, message: str) -> bool:
    if (repr_, message) == (entry.object_repr, entry.change_message):
        return False
    LogEntry.objects.filter(pk=entry.pk).update(object_repr=repr_, change_message=message)
    return True


def scrub_admin_log(needles: Needles, own: dict[type[models.Model], list[int]]) -> int:
    """Rename the customer's own objects (after anonymising them) in their entries, and cut
    the number and e-mail out of any other entry of the company; return entries changed."""
    changed = 0
    for model, pks in own.items():
        if not pks:
            continue
        entries = LogEntry.objects.filter(
            content_type=ContentType.objects.get_for_model(model),
            object_id__in=[str(pk) for pk in pks],
        )
        for entry in entries:
            message = needles.scrub(entry.change_message, with_name=True)
            changed += _save(entry, _describe(model, entry.object_id or ""), message)
    mention: list[Q] = []
    for column in ("object_repr", "change_message"):
        q = needles.q_for(column)
        if q is not None:
            mention.append(q)
    if not mention:
        return changed
    query: Any = mention[0] | mention[1] if len(mention) == 2 else mention[0]
    for entry in LogEntry.objects.filter(query):
        if _ours(entry):
            changed += _save(
                entry, needles.scrub(entry.object_repr), needles.scrub(entry.change_message)
            )
    return changed
