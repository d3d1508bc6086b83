"""Serializers of the booking API. Foreign keys are ids; datetimes carry offsets."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from bookings.api.fields import AwareDateTimeField, BoundedDateField
from bookings.availability import MAX_RANGE_DAYS
from bookings.models import Appointment, Customer, Service, StaffMember
from tenants.context import current_company_id
from tenants.models import Company
from tenants.phones import InvalidPhone, normalize_phone


class ServiceSerializer(serializers.ModelSerializer[Service]):
    class Meta:
        model = Service
        fields = [
            "id",
            "name",
            "description",
            "duration_minutes",
            "slot_interval_minutes",
            "price",
            "deposit",
            "currency",
            "min_notice_minutes",
            "horizon_days",
            "buffer_minutes",
            "active",
        ]


class StaffSerializer(serializers.ModelSerializer[StaffMember]):
    services = serializers.ManyRelatedField(
        child_relation=serializers.PrimaryKeyRelatedField(read_only=True), read_only=True
    )

    class Meta:
        model = StaffMember
        fields = ["id", "name", "branch", "services", "active"]


def company_region() -> str:
    """The default region for reading national phone numbers: the company's country."""
    return Company.objects.values_list("country", flat=True).get(pk=current_company_id())


class PhoneField(serializers.CharField):
    """A phone number in any common notation, stored as E.164."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 40)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        text = super().to_internal_value(data)
        region = self.context.get("region") or company_region()
        try:
            return normalize_phone(text, region)
        except InvalidPhone as exc:
            raise serializers.ValidationError(str(exc)) from None


class CustomerSerializer(serializers.ModelSerializer[Customer]):
    phone = PhoneField()
    name = serializers.CharField(max_length=200)

    class Meta:
        model = Customer
        fields = ["id", "name", "phone", "email", "notes", "created_at"]
        read_only_fields = ["created_at"]

    def validate_phone(self, phone: str) -> str:
        others = Customer.objects.filter(phone=phone)
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            raise serializers.ValidationError("A customer with this phone number exists.")
        return phone


class NewCustomerSerializer(serializers.Serializer[dict[str, Any]]):
    name = serializers.CharField(max_length=200)
    phone = PhoneField()
    email = serializers.EmailField(required=False, allow_blank=True)


@extend_schema_field(
    {
        "oneOf": [
            {"type": "integer", "description": "An existing customer's id."},
            {
                "type": "object",
                "required": ["name", "phone"],
                "properties": {
                    "name": {"type": "string"},
                    "phone": {"type": "string"},
                    "email": {"type": "string", "format": "email"},
                },
            },
        ]
    }
)
class CustomerRefField(serializers.Field[Customer, Any, Any, Any]):
    """Either an existing customer's id or ``{name, phone[, email]}`` for a new or known one."""

    default_error_messages = {
        "invalid": "Give a customer id or an object with name and phone.",
        "does_not_exist": "No customer with this id.",
    }

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, bool):
            self.fail("invalid")
        if isinstance(data, int):
            customer = Customer.objects.filter(pk=data).first()
            if customer is None:
                self.fail("does_not_exist")
            return customer
        if isinstance(data, dict):
            nested = NewCustomerSerializer(data=data, context=self.context)
            nested.is_valid(raise_exception=True)
            return dict(nested.validated_data)
        raise serializers.ValidationError(self.error_messages["invalid"], code="invalid")

    def to_representation(self, value: Any) -> Any:
        return value.pk


class AppointmentSerializer(serializers.ModelSerializer[Appointment]):
    """An appointment as staff apps see it; times in the branch's offset."""

    class Meta:
        model = Appointment
        fields = [
            "id",
            "branch",
            "staff",
            "service",
            "customer",
            "start",
            "end",
            "status",
            "source",
            "deposit_status",
            "notes",
            "cancellation_reason",
            "created_at",
        ]
        read_only_fields = fields

    def to_representation(self, instance: Appointment) -> dict[str, Any]:
        data = super().to_representation(instance)
        tz = ZoneInfo(instance.branch.timezone)
        data["start"] = instance.start.astimezone(tz).isoformat()
        data["end"] = instance.end.astimezone(tz).isoformat()
        return data


class BookingRequestSerializer(serializers.Serializer[dict[str, Any]]):
    service = serializers.PrimaryKeyRelatedField(queryset=Service.objects.all())
    staff = serializers.PrimaryKeyRelatedField(queryset=StaffMember.objects.all())
    start = AwareDateTimeField()
    customer = CustomerRefField()
    notes = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class RescheduleRequestSerializer(serializers.Serializer[dict[str, Any]]):
    start = AwareDateTimeField()
    staff = serializers.PrimaryKeyRelatedField(queryset=StaffMember.objects.all(), required=False)


class CancelRequestSerializer(serializers.Serializer[dict[str, Any]]):
    reason = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


class AvailabilityQuerySerializer(serializers.Serializer[dict[str, Any]]):
    service = serializers.PrimaryKeyRelatedField(queryset=Service.objects.filter(active=True))
    date = BoundedDateField()
    date_to = BoundedDateField(required=False)
    staff = serializers.PrimaryKeyRelatedField(queryset=StaffMember.objects.all(), required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        first, last = attrs["date"], attrs.get("date_to") or attrs["date"]
        if last < first:
            raise serializers.ValidationError({"date_to": ["date_to can't be before date."]})
        if (last - first).days >= MAX_RANGE_DAYS:
            raise serializers.ValidationError(
                {"date_to": [f"At most {MAX_RANGE_DAYS} days at a time."]}
            )
        attrs["date_to"] = last
        return attrs


class SlotSerializer(serializers.Serializer[Any]):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    staff = serializers.IntegerField()


class AvailabilitySerializer(serializers.Serializer[Any]):
    slots = SlotSerializer(many=True)
    calendar = serializers.ChoiceField(
        choices=["fresh", "stale", "off"],
        help_text="Cal.com busy times: fresh, stale (Cal.com unavailable; last known "
        "busy times subtracted), off (no calendar connected).",
    )
