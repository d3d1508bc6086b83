"""A ModelAdmin base that keeps every admin page inside the bound company.

Querysets, FK/M2M choices, autocomplete and raw-id labels all go through the tenant
manager, so they are scoped already; this base closes what the manager can't see:
relations to non-tenant models (users, companies) in filters and choices, the
``company`` field itself, and superusers' forms that could mix two companies.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db import models
from django.http import Http404, HttpRequest

from tenants.context import current_scope
from tenants.models import TenantModel


class TenantAdminForm(forms.ModelForm):
    """Refuse related objects of another company (only superusers could pick them)."""

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        company = cleaned.get("company") or getattr(self.instance, "company", None)
        company_id = getattr(company, "pk", None)
        if company_id is None:
            scope = current_scope()
            company_id = scope.company_id if scope else None
        if company_id is None:
            return cleaned
        for name, value in list(cleaned.items()):
            values = value if isinstance(value, models.QuerySet | list | tuple) else [value]
            for item in values:
                if isinstance(item, TenantModel) and item.company_id != company_id:
                    self.add_error(name, "This belongs to another company.")
                    break
        return cleaned


class WriteOnlySecretForm(TenantAdminForm):
    """`write_only_field` can be set or replaced, never read back; left empty, it is kept."""

    write_only_field = "secret"
    write_only_required = True  # a new object needs one

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields[self.write_only_field] = forms.CharField(
            required=False,
            widget=forms.PasswordInput(render_value=False),
            help_text="Leave empty to keep the current value.",
        )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if not cleaned.get(self.write_only_field):
            if self.write_only_required and not self.instance.pk:
                self.add_error(self.write_only_field, "A new one needs this secret.")
            cleaned[self.write_only_field] = getattr(self.instance, self.write_only_field)
        return cleaned


class NotFoundForOtherCompanies:
    """Answer another company's object with a 404, not the admin's "doesn't exist"
    redirect: the object is invisible, and the status code says so."""

    def _get_obj_does_not_exist_redirect(
        self, request: HttpRequest, opts: Any, object_id: str
    ) -> Any:
        raise Http404("No such object.")


def _is_superuser(request: HttpRequest) -> bool:
    return bool(getattr(request.user, "is_superuser", False))


class TenantAdmin(NotFoundForOtherCompanies, admin.ModelAdmin):
    """Base of every admin for a tenant model."""

    form = TenantAdminForm
    # Django 6's default for scheme-less URLs, opted into now.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def get_exclude(self, request: HttpRequest, obj: Any = None) -> Any:
        exclude = list(super().get_exclude(request, obj) or [])
        if not _is_superuser(request):
            exclude.append("company")  # filled from the bound tenant on save
        return exclude

    def get_list_filter(self, request: HttpRequest) -> Any:
        # A plain related filter lists every row of the target table; related-only
        # lists just the values present in this (scoped) changelist.
        converted: list[Any] = []
        for entry in super().get_list_filter(request):
            if isinstance(entry, str) and self._is_relation(entry):
                if entry == "company" and not _is_superuser(request):
                    continue
                converted.append((entry, admin.RelatedOnlyFieldListFilter))
            else:
                converted.append(entry)
        return converted

    def _is_relation(self, path: str) -> bool:
        model: Any = self.model
        field = None
        for part in path.split("__"):
            field = model._meta.get_field(part)
            model = getattr(field, "related_model", None)
            if model is None:
                return False
        return bool(field and field.is_relation)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.related_model is get_user_model() and not _is_superuser(request):
            kwargs["queryset"] = members_of_bound_company()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_list_display(self, request: HttpRequest) -> Any:
        display = list(super().get_list_display(request))
        if _is_superuser(request) and "company" not in display:
            display.append("company")
        return display


class ReadOnlyTenantAdmin(TenantAdmin):
    """Records written by the system (history, inbox, calls, payments): look, don't touch."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class TenantInline(admin.TabularInline):
    """Inline rows of a tenant model: ``company`` comes from the parent object."""

    def get_exclude(self, request: HttpRequest, obj: Any = None) -> Any:
        return [*(super().get_exclude(request, obj) or []), "company"]

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        formset = super().get_formset(request, obj, **kwargs)

        class ParentCompanyFormSet(formset):  # type: ignore[misc,valid-type]
            def save_new(self, form: Any, commit: bool = True) -> Any:
                form.instance.company_id = self.instance.company_id
                return super().save_new(form, commit)

        return ParentCompanyFormSet


def members_of_bound_company() -> models.QuerySet[Any]:
    """Users with a membership in the bound company (none when no single company)."""
    scope = current_scope()
    users = get_user_model().objects.all()
    if scope is None or scope.company_id is None:
        return users if scope is not None else users.none()
    return users.filter(memberships__company_id=scope.company_id).distinct()
