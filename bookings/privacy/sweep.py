"""The safety net: every text and JSON column of the bound company's data searched for
the customer's number and e-mail, and each hit cut out.

The targeted steps (``bookings.privacy.erase``) decide what happens to the customer's
own rows; this catches the rest -- a note on another customer ("calls for her mother,
+49 151 …"), a provider error message, a column added next year -- without anyone
having to remember to list it. The business's own set-up (branches, staff, services,
hours) is left alone: it holds no customer data, and a branch's number must never be
scrubbed because a customer once called from the shop phone.
"""

from __future__ import annotations

from collections import Counter
from functools import reduce
from operator import or_
from typing import Any

from django.db import models

from bookings.privacy.needles import Needles, searchable
from tenants.db.rls import tenant_models

# The business's configuration, not its customers' data.
CONFIGURATION = frozenset(
    {
        "tenants.branch",
        "bookings.service",
        "bookings.staffmember",
        "bookings.staffservice",
        "bookings.workinghours",
        "bookings.timeoff",
        "bookings.closure",
        "webhooks.webhookendpoint",
    }
)
# Never rewritten: the inbox's de-duplication key (it holds provider ids, never a number).
KEPT_FIELDS = frozenset({"webhooks.webhookevent.dedup_key"})
# Rows that are a short-lived cache of a request: dropped on a hit, not edited (their
# request fingerprint was computed over the personal data too).
DROPPED_ON_HIT = frozenset({"bookings.idempotencyrecord"})


def text_fields(model: type[models.Model]) -> list[models.Field[Any, Any]]:
    """Columns that can hold text: char, text, e-mail, URL, JSON (not encrypted ones)."""
    from askpro.crypto import EncryptedTextField

    label = model._meta.label_lower
    return [
        f
        for f in model._meta.concrete_fields
        if isinstance(f, models.CharField | models.TextField | models.JSONField)
        and not isinstance(f, EncryptedTextField)
        and not f.primary_key
        and f"{label}.{f.name}" not in KEPT_FIELDS
    ]


def _hits(model: type[models.Model], needles: Needles) -> models.QuerySet[Any]:
    fields = text_fields(model)
    annotations: dict[str, Any] = {}
    found = []
    for index, column in enumerate(fields):
        name, annotation = searchable(column, f"_privacy_text_{index}")
        if annotation is not None:
            annotations[name] = annotation
        q = needles.q_for(name)
        if q is not None:
            found.append(q)
    if not found:
        return model._default_manager.none()
    rows = model._default_manager.annotate(**annotations) if annotations else model._default_manager
    return rows.filter(reduce(or_, found)).only("pk", *(f.name for f in fields))


def sweep(needles: Needles) -> Counter[str]:
    """Scrub the phone and e-mail out of every customer-data table of the bound company;
    return rows changed (or dropped) per model label."""
    changed: Counter[str] = Counter()
    if not needles:
        return changed
    for model in tenant_models():
        label = model._meta.label_lower
        if label in CONFIGURATION:
            continue
        hits = _hits(model, needles)
        if label in DROPPED_ON_HIT:
            dropped, _ = model._default_manager.filter(pk__in=hits.values("pk")).delete()
            changed[label] += dropped
            continue
        for row in hits:
            updates = {}
            for column in text_fields(model):
                value = getattr(row, column.attname)
                scrubbed = needles.scrub_value(value)
                if scrubbed != value:
                    updates[column.attname] = scrubbed
            if updates:
                model._default_manager.filter(pk=row.pk).update(**updates)
                changed[label] += 1
    return changed
