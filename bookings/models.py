"""The booking domain: what is offered, by whom, when, and what was booked."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any, ClassVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tenants.models import Branch, TenantModel


class Service(TenantModel):
    """Something a customer can book, with its booking rules."""

    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    duration_minutes = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(5), MaxValueValidator(12 * 60)]
    )
    slot_interval_minutes = models.PositiveSmallIntegerField(
        default=15,
        validators=[MinValueValidator(5), MaxValueValidator(240)],
        help_text=_("Offered start times are this many minutes apart."),
    )
    price = models.DecimalField(max_digits=8, decimal_places=2, default=Decimal("0"))
    deposit = models.DecimalField(
        max_digits=8, decimal_places=2, default=Decimal("0"), help_text=_("0 = no deposit")
    )
    currency = models.CharField(max_length=3, default="EUR")
    min_notice_minutes = models.PositiveIntegerField(
        default=60, help_text=_("How long before its start a slot can still be booked.")
    )
    horizon_days = models.PositiveSmallIntegerField(
        default=60,
        validators=[MinValueValidator(1), MaxValueValidator(366)],
        help_text=_("How far ahead slots are offered."),
    )
    buffer_minutes = models.PositiveSmallIntegerField(
        default=0,
        validators=[MaxValueValidator(240)],
        help_text=_("Kept free after each appointment (cleaning, notes)."),
    )
    calcom_event_type_id = models.PositiveIntegerField(null=True, blank=True)
    active = models.BooleanField(default=True)

    class Meta(TenantModel.Meta):
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["company", "name"], name="service_unique_name"),
            models.CheckConstraint(
                condition=Q(deposit__lte=F("price")) | Q(deposit=0), name="service_deposit_le_price"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def duration(self) -> timedelta:
        return timedelta(minutes=self.duration_minutes)

    @property
    def buffer(self) -> timedelta:
        return timedelta(minutes=self.buffer_minutes)

    @property
    def requires_deposit(self) -> bool:
        return self.deposit > 0


class StaffMember(TenantModel):
    """A person whose time can be booked, at one branch."""

    branch = models.ForeignKey(Branch, on_delete=models.PROTECT, related_name="staff")
    name = models.CharField(max_length=120)
    email = models.EmailField(blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="staff_profiles",
    )
    services: models.ManyToManyField[Service, StaffService] = models.ManyToManyField(
        Service, through="StaffService", related_name="staff"
    )
    calcom_user_id = models.PositiveIntegerField(null=True, blank=True)
    active = models.BooleanField(default=True)

    class Meta(TenantModel.Meta):
        ordering = ["name"]
        verbose_name = "staff member"
        constraints = [
            models.UniqueConstraint(
                fields=["company", "branch", "name"], name="staff_unique_name_per_branch"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class StaffService(TenantModel):
    """That a staff member offers a service (the tenant through model)."""

    staff = models.ForeignKey(StaffMember, on_delete=models.CASCADE)
    service = models.ForeignKey(Service, on_delete=models.CASCADE)

    class Meta(TenantModel.Meta):
        ordering = ["staff", "service"]
        constraints = [
            models.UniqueConstraint(
                fields=["company", "staff", "service"], name="staff_service_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.staff} - {self.service}"


class Weekday(models.IntegerChoices):
    MONDAY = 0, _("Monday")
    TUESDAY = 1, _("Tuesday")
    WEDNESDAY = 2, _("Wednesday")
    THURSDAY = 3, _("Thursday")
    FRIDAY = 4, _("Friday")
    SATURDAY = 5, _("Saturday")
    SUNDAY = 6, _("Sunday")


class WorkingHours(TenantModel):
    """A weekly shift in the branch's local time, with an optional break."""

    staff = models.ForeignKey(StaffMember, on_delete=models.CASCADE, related_name="working_hours")
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    start = models.TimeField()
    end = models.TimeField()
    break_start = models.TimeField(null=True, blank=True)
    break_end = models.TimeField(null=True, blank=True)

    class Meta(TenantModel.Meta):
        ordering = ["staff", "weekday", "start"]
        verbose_name_plural = "working hours"
        constraints = [
            models.CheckConstraint(condition=Q(start__lt=F("end")), name="hours_start_before_end"),
            models.CheckConstraint(
                condition=(Q(break_start__isnull=True) & Q(break_end__isnull=True))
                | (
                    Q(break_start__gte=F("start"))
                    & Q(break_start__lt=F("break_end"))
                    & Q(break_end__lte=F("end"))
                ),
                name="hours_break_inside_shift",
            ),
        ]

    def __str__(self) -> str:
        shift = f"{self.get_weekday_display()} {self.start:%H:%M}-{self.end:%H:%M}"
        if self.break_start and self.break_end:
            shift += f" (break {self.break_start:%H:%M}-{self.break_end:%H:%M})"
        return shift

    def clean(self) -> None:
        if self.start and self.end and self.start >= self.end:
            raise ValidationError({"end": _("The shift must end after it starts.")})
        if (self.break_start is None) != (self.break_end is None):
            raise ValidationError(_("A break needs both a start and an end."))
        has_break = self.break_start and self.break_end and self.start and self.end
        if has_break and not self.start <= self.break_start < self.break_end <= self.end:  # type: ignore[operator]
            raise ValidationError(_("The break must lie inside the shift."))


class TimeOff(TenantModel):
    """A staff member's absence (holiday, sick leave, training)."""

    staff = models.ForeignKey(StaffMember, on_delete=models.CASCADE, related_name="time_off")
    start = models.DateTimeField()
    end = models.DateTimeField()
    reason = models.CharField(max_length=200, blank=True)

    class Meta(TenantModel.Meta):
        ordering = ["start"]
        verbose_name_plural = "time off"
        constraints = [
            models.CheckConstraint(
                condition=Q(start__lt=F("end")), name="time_off_start_before_end"
            )
        ]

    def __str__(self) -> str:
        start, end = timezone.localtime(self.start), timezone.localtime(self.end)
        return f"{self.staff}: {start:%Y-%m-%d %H:%M} - {end:%Y-%m-%d %H:%M %Z}"

    def clean(self) -> None:
        if self.start and self.end and self.start >= self.end:
            raise ValidationError({"end": _("Time off must end after it starts.")})


class Closure(TenantModel):
    """Days a branch is closed (public holidays, renovation), inclusive, local dates."""

    branch = models.ForeignKey(Branch, on_delete=models.CASCADE, related_name="closures")
    start_date = models.DateField()
    end_date = models.DateField()
    reason = models.CharField(max_length=200, blank=True)

    class Meta(TenantModel.Meta):
        ordering = ["start_date"]
        constraints = [
            models.CheckConstraint(
                condition=Q(start_date__lte=F("end_date")), name="closure_start_not_after_end"
            )
        ]

    def __str__(self) -> str:
        return f"{self.branch}: {self.start_date} - {self.end_date}"

    def clean(self) -> None:
        if self.start_date and self.end_date and self.start_date > self.end_date:
            raise ValidationError({"end_date": _("A closure can't end before it starts.")})


class Customer(TenantModel):
    """Someone who books; phones are stored E.164 and unique per company."""

    name = models.CharField(max_length=200)
    phone = models.CharField(max_length=20, blank=True)
    email = models.EmailField(blank=True)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Set by forget_customer (bookings.privacy): name, phone, e-mail and notes erased; the
    # row stays so the appointments keep pointing at someone, anonymised.
    forgotten_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta(TenantModel.Meta):
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["company", "phone"], condition=~Q(phone=""), name="customer_unique_phone"
            ),
        ]
        indexes = [models.Index(fields=["company", "name"], name="customer_name_idx")]

    def __str__(self) -> str:
        return self.name


class AppointmentStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    CONFIRMED = "confirmed", _("Confirmed")
    CANCELLED = "cancelled", _("Cancelled")
    COMPLETED = "completed", _("Completed")
    NO_SHOW = "no_show", _("No-show")


ACTIVE_STATUSES = (AppointmentStatus.PENDING, AppointmentStatus.CONFIRMED)


class AppointmentSource(models.TextChoices):
    PHONE = "phone", _("Phone")
    WEB = "web", _("Web / API")
    ADMIN = "admin", _("Admin")
    CALENDAR = "calendar", _("Calendar")


class DepositStatus(models.TextChoices):
    NONE = "none", _("No deposit")
    REQUIRED = "required", _("Required")
    PAID = "paid", _("Paid")
    FAILED = "failed", _("Failed")
    REFUNDED = "refunded", _("Refunded")


class CalendarSync(models.TextChoices):
    OFF = "off", _("Not synced (no calendar)")
    PENDING = "pending", _("Waiting for the calendar")
    SYNCED = "synced", _("In the calendar")


class Appointment(TenantModel):
    """A booked slot. Active ones (pending, confirmed) never overlap per staff member:
    PostgreSQL enforces that with an exclusion constraint on ``[start, busy_until)``."""

    branch = models.ForeignKey(Branch, on_delete=models.PROTECT, related_name="appointments")
    staff = models.ForeignKey(StaffMember, on_delete=models.PROTECT, related_name="appointments")
    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="appointments")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="appointments")
    start = models.DateTimeField()
    end = models.DateTimeField()
    busy_until = models.DateTimeField(help_text=_("end plus the service's buffer"))
    status = models.CharField(
        max_length=10, choices=AppointmentStatus.choices, default=AppointmentStatus.CONFIRMED
    )
    source = models.CharField(
        max_length=10, choices=AppointmentSource.choices, default=AppointmentSource.ADMIN
    )
    deposit_status = models.CharField(
        max_length=10, choices=DepositStatus.choices, default=DepositStatus.NONE
    )
    # NULL, not "": unique per company only when set.
    calcom_uid = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001
    calendar_sync = models.CharField(
        max_length=10,
        choices=CalendarSync.choices,
        default=CalendarSync.OFF,
        db_default=CalendarSync.OFF,  # rows written before the column existed, raw inserts
    )
    stripe_checkout_session_id = models.CharField(max_length=255, blank=True)
    stripe_payment_intent_id = models.CharField(max_length=255, blank=True)
    deposit_checkout_url = models.URLField(
        max_length=2000,
        blank=True,
        db_default="",  # raw inserts (as for calendar_sync)
        help_text=_("Stripe Checkout page for the deposit"),
    )
    # What the customer has been told (bookings.notifications): "", "pending" (received),
    # "confirmed", "cancelled"; claimed before sending, so no message goes out twice.
    customer_notified = models.CharField(max_length=10, blank=True, default="", db_default="")
    reminded_start = models.DateTimeField(
        null=True, blank=True, help_text=_("the start time a reminder was queued for")
    )
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    notes = models.TextField(blank=True)
    cancellation_reason = models.CharField(max_length=300, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["start", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(start__lt=F("end")), name="appointment_start_before_end"
            ),
            models.CheckConstraint(
                condition=Q(end__lte=F("busy_until")), name="appointment_busy_covers_end"
            ),
            models.UniqueConstraint(
                fields=["company", "calcom_uid"], name="appointment_unique_calcom_uid"
            ),
            models.UniqueConstraint(
                fields=["company", "idempotency_key"], name="appointment_unique_idempotency_key"
            ),
        ]
        indexes = [
            models.Index(fields=["company", "start"], name="appointment_start_idx"),
            models.Index(fields=["staff", "start"], name="appointment_staff_start_idx"),
            models.Index(fields=["customer", "start"], name="appointment_customer_idx"),
        ]

    def __str__(self) -> str:
        # In the current time zone: the admin shows the company's (tenants.middleware).
        start = timezone.localtime(self.start)
        return f"{self.service} for {self.customer} at {start:%Y-%m-%d %H:%M %Z}"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES


class AppointmentHistory(TenantModel):
    """Append-only record of who or what changed an appointment, and how."""

    appointment = models.ForeignKey(Appointment, on_delete=models.CASCADE, related_name="history")
    at = models.DateTimeField(auto_now_add=True)
    action = models.CharField(max_length=30)
    actor = models.CharField(max_length=100, help_text=_("user:<id>, phone, calendar, system"))
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    changes = models.JSONField(default=dict, blank=True)

    append_only: ClassVar[bool] = True

    class Meta(TenantModel.Meta):
        ordering = ["at", "pk"]
        verbose_name_plural = "appointment history"

    def __str__(self) -> str:
        return f"{self.action} by {self.actor}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.assign_company()
        if self.pk is not None:
            raise ValidationError("Appointment history is append-only.")
        super().save(*args, **kwargs)


class IdempotencyRecord(TenantModel):
    """The stored answer to a POST made with an ``Idempotency-Key`` header."""

    user_id = models.BigIntegerField()
    key = models.CharField(max_length=200)
    request_hash = models.CharField(max_length=64)
    in_progress = models.BooleanField(default=True)
    status_code = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta(TenantModel.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["company", "user_id", "key"], name="idempotency_unique_key"
            ),
        ]

    def __str__(self) -> str:
        return self.key
