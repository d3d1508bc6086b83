"""The staff's daily tool: services, people, hours, customers and appointments."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from bookings import saga, services
from bookings.errors import BookingError
from bookings.models import (
    Appointment,
    AppointmentHistory,
    Closure,
    Customer,
    Service,
    StaffMember,
    StaffService,
    TimeOff,
    WorkingHours,
)
from tenants.admin_base import ReadOnlyTenantAdmin, TenantAdmin, TenantAdminForm, TenantInline
from tenants.context import current_scope, tenant_context
from tenants.models import Company
from tenants.phones import InvalidPhone, normalize_phone


@admin.register(Service)
class ServiceAdmin(TenantAdmin):
    list_display = ["name", "duration_minutes", "price", "deposit", "buffer_minutes", "active"]
    list_filter = ["active"]
    search_fields = ["name", "description"]


class StaffServiceInline(TenantInline):
    model = StaffService
    extra = 1
    autocomplete_fields = ["service"]


class WorkingHoursInline(TenantInline):
    model = WorkingHours
    extra = 0


@admin.register(StaffMember)
class StaffMemberAdmin(TenantAdmin):
    list_display = ["name", "branch", "email", "active"]
    list_filter = ["branch", "active"]
    search_fields = ["name", "email"]
    inlines = [StaffServiceInline, WorkingHoursInline]


@admin.register(WorkingHours)
class WorkingHoursAdmin(TenantAdmin):
    list_display = ["staff", "weekday", "start", "end", "break_start", "break_end"]
    list_filter = ["staff", "weekday"]


@admin.register(TimeOff)
class TimeOffAdmin(TenantAdmin):
    list_display = ["staff", "start", "end", "reason"]
    list_filter = ["staff"]
    date_hierarchy = "start"


@admin.register(Closure)
class ClosureAdmin(TenantAdmin):
    list_display = ["branch", "start_date", "end_date", "reason"]
    list_filter = ["branch"]
    date_hierarchy = "start_date"


class CustomerForm(TenantAdminForm):
    def clean_phone(self) -> str:
        phone: str = self.cleaned_data.get("phone", "")
        if not phone:
            return phone
        scope = current_scope()
        company_id = self.instance.company_id or (scope.company_id if scope else None) or 0
        region = (
            Company.objects.filter(pk=company_id).values_list("country", flat=True).first() or "DE"
        )
        try:
            return normalize_phone(phone, region)
        except InvalidPhone as exc:
            raise forms.ValidationError(str(exc)) from None


@admin.register(Customer)
class CustomerAdmin(TenantAdmin):
    form = CustomerForm
    list_display = ["name", "phone", "email", "created_at"]
    search_fields = ["name", "phone", "email"]
    actions = ["forget_selected"]

    @admin.action(
        description="Forget selected customers (erase personal data, keep appointments)",
        permissions=["delete"],  # owners and managers, not staff
    )
    def forget_selected(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        from bookings.privacy import NothingToForget, forget_customer

        actor = services.Actor.user(request.user)
        forgotten = 0
        for customer in queryset:
            try:
                with tenant_context(customer.company_id):
                    forget_customer(customer, actor=actor)
                forgotten += 1
            except NothingToForget as exc:
                messages.warning(request, f"Customer {customer.pk}: {exc}")
        messages.success(
            request,
            f"{forgotten} customer(s) forgotten: name, phone, e-mail, notes and call "
            "transcripts erased; their appointments stay, anonymised.",
        )


class HistoryInline(admin.TabularInline):
    model = AppointmentHistory
    extra = 0
    can_delete = False
    fields = ("at", "action", "actor", "changes")
    readonly_fields = ("at", "action", "actor", "changes")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class WhenFilter(admin.SimpleListFilter):
    """Today's appointments one click away, in the company's local day."""

    title = "when"
    parameter_name = "when"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("today", "Today"),
            ("tomorrow", "Tomorrow"),
            ("week", "Next 7 days"),
            ("past", "Past"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        today = timezone.localdate()
        midnight = timezone.make_aware(datetime.combine(today, time.min))
        ranges = {
            "today": (midnight, midnight + timedelta(days=1)),
            "tomorrow": (midnight + timedelta(days=1), midnight + timedelta(days=2)),
            "week": (midnight, midnight + timedelta(days=7)),
        }
        if self.value() == "past":
            return queryset.filter(start__lt=timezone.now())
        if self.value() in ranges:
            first, last = ranges[self.value()]  # type: ignore[index]
            return queryset.filter(start__gte=first, start__lt=last)
        return queryset


class AppointmentForm(TenantAdminForm):
    """Booking rules checked here, so a refused time is a form error, not a 500."""

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        staff, service, start = (cleaned.get(f) for f in ("staff", "service", "start"))
        if self.errors or not (staff and start):
            return cleaned
        moving = self.instance if self.instance.pk else None
        service = service or (moving.service if moving else None)
        if service is None:
            return cleaned
        if moving and moving.start == start and moving.staff_id == staff.pk:
            return cleaned
        try:
            services.check_slot(service, staff, start, now=timezone.now(), moving=moving)
        except BookingError as exc:
            self.add_error(exc.field if exc.field in self.fields else None, exc.message)
        return cleaned


@admin.register(Appointment)
class AppointmentAdmin(TenantAdmin):
    form = AppointmentForm
    list_display = [
        "start",
        "customer",
        "service",
        "staff",
        "branch",
        "status",
        "source",
        "deposit_status",
    ]
    list_filter = [WhenFilter, "status", "source", "branch", "staff", "service", "deposit_status"]
    list_select_related = ["customer", "service", "staff", "branch"]
    search_fields = ["customer__name", "customer__phone", "calcom_uid", "notes"]
    date_hierarchy = "start"
    autocomplete_fields = ["customer"]
    inlines = [HistoryInline]
    actions = ["cancel_selected", "mark_completed", "mark_no_show"]

    # Status, deposit and calendar state change only through actions and the services.
    add_fields = ("staff", "service", "customer", "start", "notes")
    readonly_on_change = (
        "service",
        "customer",
        "end",
        "status",
        "source",
        "deposit_status",
        "calcom_uid",
        "cancellation_reason",
    )

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None:
            return ["staff", "start", "notes", *self.readonly_on_change]
        return ["company", *self.add_fields] if request.user.is_superuser else self.add_fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.readonly_on_change if obj is not None else ()

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        actor = services.Actor.user(request.user)
        try:
            if not change:
                booked = saga.book(
                    service=obj.service,
                    staff=obj.staff,
                    start=obj.start,
                    customer=obj.customer,
                    actor=actor,
                    source="admin",
                    notes=obj.notes,
                    defer=True,  # inside the admin's transaction
                )
                obj.pk, obj.company_id = booked.pk, booked.company_id
                obj.refresh_from_db()
                return
            if {"start", "staff"} & set(form.changed_data):
                services.reschedule_appointment(obj, start=obj.start, staff=obj.staff, actor=actor)
            if "notes" in form.changed_data:
                Appointment.objects.filter(pk=obj.pk).update(notes=obj.notes)
        except BookingError as exc:  # lost a race after the form's check
            messages.error(request, exc.message)

    def _each(self, request: HttpRequest, queryset: QuerySet[Any], change: Any, done: str) -> None:
        count = 0
        for appointment in queryset:
            try:
                change(appointment, actor=services.Actor.user(request.user))
                count += 1
            except BookingError as exc:
                messages.warning(request, f"{appointment}: {exc.message}")
        messages.success(request, f"{count} appointment(s) {done}.")

    @admin.action(description="Cancel selected appointments", permissions=["change"])
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        self._each(request, queryset, services.cancel_appointment, "cancelled")

    @admin.action(description="Mark as completed", permissions=["change"])
    def mark_completed(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        self._each(request, queryset, services.mark_completed, "marked completed")

    @admin.action(description="Mark as no-show", permissions=["change"])
    def mark_no_show(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        self._each(request, queryset, services.mark_no_show, "marked no-show")


@admin.register(AppointmentHistory)
class AppointmentHistoryAdmin(ReadOnlyTenantAdmin):
    list_display = ["at", "appointment", "action", "actor"]
    list_filter = ["action"]
    search_fields = ["actor", "appointment__customer__name"]
    list_select_related = ["appointment__customer", "appointment__service"]
    date_hierarchy = "at"

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
