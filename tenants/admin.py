"""Admin for companies, branches and the people who work there."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import Group
from django.db.models import QuerySet
from django.http import HttpRequest
from rest_framework.authtoken.models import TokenProxy

from tenants.admin_base import NotFoundForOtherCompanies, TenantAdmin, members_of_bound_company
from tenants.context import current_scope
from tenants.models import Branch, Company, Membership, Role

User = get_user_model()

admin.site.site_header = "AskPro"
admin.site.site_title = "AskPro admin"
admin.site.index_title = "Bookings, branches and calls"


def _bound_company_id() -> int | None:
    scope = current_scope()
    return scope.company_id if scope else None


@admin.register(Company)
class CompanyAdmin(NotFoundForOtherCompanies, admin.ModelAdmin):
    list_display = ["name", "slug", "country", "timezone", "active"]
    search_fields = ["name", "slug"]
    list_filter = ["active", "country"]
    prepopulated_fields = {"slug": ["name"]}

    def get_queryset(self, request: HttpRequest) -> QuerySet[Company]:
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(pk=_bound_company_id() or 0)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [] if request.user.is_superuser else ["slug", "active"]

    def get_prepopulated_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return super().get_prepopulated_fields(request, obj) if request.user.is_superuser else {}

    def has_add_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_superuser)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser)


@admin.register(Branch)
class BranchAdmin(TenantAdmin):
    list_display = ["name", "phone", "timezone", "country"]
    search_fields = ["name", "phone", "address"]
    list_filter = ["country"]


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    fk_name = "user"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Membership]:
        queryset = super().get_queryset(request).select_related("company")
        if request.user.is_superuser:
            return queryset
        return queryset.filter(company_id=_bound_company_id() or 0)

    def get_exclude(self, request: HttpRequest, obj: Any = None) -> Any:
        return [] if request.user.is_superuser else ["company"]

    def formfield_for_choice_field(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        is_owner = request.user.is_superuser or getattr(request, "company_role", None) == Role.OWNER
        if db_field.name == "role" and not is_owner:
            # Only an owner can make someone an owner.
            kwargs["choices"] = [c for c in Role.choices if c[0] != Role.OWNER]
        return super().formfield_for_choice_field(db_field, request, **kwargs)

    def get_max_num(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> int | None:
        return None if request.user.is_superuser else 1

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        formset = super().get_formset(request, obj, **kwargs)
        company_id = _bound_company_id()
        if not request.user.is_superuser and company_id:

            class BoundFormSet(formset):  # type: ignore[misc,valid-type]
                def save_new(self, form: Any, commit: bool = True) -> Any:
                    form.instance.company_id = company_id
                    return super().save_new(form, commit)

            return BoundFormSet
        return formset


admin.site.unregister(User)
# Permissions come from membership roles (tenants.permissions); groups would be global.
admin.site.unregister(Group)
# Token keys are credentials: never listed in the admin (seed_demo prints the demo's).
admin.site.unregister(TokenProxy)


@admin.register(User)
class CompanyUserAdmin(NotFoundForOtherCompanies, UserAdmin):
    """Users scoped by membership: a manager sees and edits their company's people."""

    inlines = [MembershipInline]
    list_display = ["username", "email", "first_name", "last_name", "is_active"]
    list_filter = ["is_active"]
    staff_fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name", "email")}),
        ("Status", {"fields": ("is_active", "last_login", "date_joined")}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        if request.user.is_superuser:
            return super().get_queryset(request)
        # Superusers are never edited by a company's managers, even if they are members.
        return (
            super()
            .get_queryset(request)
            .filter(pk__in=members_of_bound_company(), is_superuser=False)
        )

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None and not request.user.is_superuser:
            return self.staff_fieldsets
        return super().get_fieldsets(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [] if request.user.is_superuser else ["last_login", "date_joined"]

    def get_list_filter(self, request: HttpRequest) -> Any:
        if request.user.is_superuser:
            return ["is_superuser", "is_staff", "is_active"]
        return self.list_filter

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        company_id = _bound_company_id()
        if not request.user.is_superuser:
            obj.is_staff = True  # company people use the admin as their daily tool
        super().save_model(request, obj, form, change)
        if not change and company_id and not request.user.is_superuser:
            Membership.objects.get_or_create(
                user=obj, company_id=company_id, defaults={"role": Role.STAFF}
            )
