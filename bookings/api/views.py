"""The REST API for staff apps: services, staff, customers, appointments, availability.

Views translate; ``bookings.services`` decides. Booking errors become HTTP here, once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Prefetch, QuerySet
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.filters import SearchFilter
from rest_framework.parsers import BaseParser, JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from askpro.api_errors import APIError, error_response
from askpro.api_throttles import CompanyRateThrottle, UserRateThrottle
from bookings import saga, services
from bookings.api.fields import UtcIsoDateTimeField
from bookings.api.idempotency import (
    IDEMPOTENCY_KEY_PARAMETER,
    IDEMPOTENCY_RESPONSES,
    idempotent,
)
from bookings.api.permissions import ChangePermission, RolePermissions
from bookings.api.serializers import (
    AppointmentSerializer,
    AvailabilityQuerySerializer,
    AvailabilitySerializer,
    BookingRequestSerializer,
    CancelRequestSerializer,
    CustomerSerializer,
    RescheduleRequestSerializer,
    ServiceSerializer,
    StaffSerializer,
)
from bookings.availability import find_slots
from bookings.errors import BookingError
from bookings.models import (
    Appointment,
    AppointmentSource,
    AppointmentStatus,
    Customer,
    Service,
    StaffMember,
)
from integrations.calendar.busy import CalendarBusy
from tenants.api import TenantScopedMixin
from tenants.phones import InvalidPhone, normalize_phone


def as_api_error(exc: BookingError) -> APIError:
    """The one place a booking error becomes an HTTP answer."""
    if exc.code == "slot_taken":
        return APIError("slot_taken", exc.message, status.HTTP_409_CONFLICT)
    return APIError(
        "validation_error", exc.message, status.HTTP_400_BAD_REQUEST, {exc.field: [exc.message]}
    )


SLOT_TAKEN = error_response(
    "slot_taken: the time is no longer free; or request_in_progress: the first request "
    "with this Idempotency-Key is still running."
)


class BookingAPIView(TenantScopedMixin):
    permission_classes: Sequence[Any] = [RolePermissions]
    throttle_classes: Sequence[type[BaseThrottle]] = [UserRateThrottle, CompanyRateThrottle]
    # JSON bodies only: a booking's customer is a nested object, which form encodings
    # can't carry; anything else is a 415.
    parser_classes: Sequence[type[BaseParser]] = [JSONParser]


@extend_schema_field(OpenApiTypes.BOOL)
class StrictBooleanFilter(filters.TypedChoiceFilter):
    """``true`` or ``false``; anything else is a 400, not silently ignored."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("choices", [("true", "true"), ("false", "false")])
        kwargs.setdefault("coerce", lambda value: value == "true")
        super().__init__(**kwargs)


class ServiceFilter(filters.FilterSet):
    active = StrictBooleanFilter()

    class Meta:
        model = Service
        fields = ["active"]


class StaffFilter(filters.FilterSet):
    active = StrictBooleanFilter()

    class Meta:
        model = StaffMember
        fields = ["branch", "active", "services"]


class ServiceViewSet(BookingAPIView, viewsets.ReadOnlyModelViewSet[Service]):
    queryset = Service.objects.all()
    serializer_class = ServiceSerializer
    filter_backends = [filters.DjangoFilterBackend, SearchFilter]
    filterset_class = ServiceFilter
    search_fields = ["name"]


class StaffViewSet(BookingAPIView, viewsets.ReadOnlyModelViewSet[StaffMember]):
    queryset = StaffMember.objects.prefetch_related(
        Prefetch("services", queryset=Service.objects.only("id"))
    )
    serializer_class = StaffSerializer
    filter_backends = [filters.DjangoFilterBackend, SearchFilter]
    filterset_class = StaffFilter
    search_fields = ["name"]


class CustomerViewSet(
    BookingAPIView,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet[Customer],
):
    queryset = Customer.objects.all()
    serializer_class = CustomerSerializer
    filter_backends = [SearchFilter]
    search_fields = ["name", "phone", "email"]

    @extend_schema(
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={201: CustomerSerializer, **IDEMPOTENCY_RESPONSES},
    )
    @idempotent
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().create(request, *args, **kwargs)


class UtcIsoDateTimeFilter(filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class AppointmentFilter(filters.FilterSet):
    start_after = UtcIsoDateTimeFilter(field_name="start", lookup_expr="gte")
    start_before = UtcIsoDateTimeFilter(field_name="start", lookup_expr="lt")
    date_from = filters.DateFilter(field_name="start", lookup_expr="date__gte")
    date_to = filters.DateFilter(field_name="start", lookup_expr="date__lte")
    status = filters.MultipleChoiceFilter(choices=AppointmentStatus.choices)

    class Meta:
        model = Appointment
        fields = ["staff", "branch", "service", "customer", "status", "source"]


class AppointmentViewSet(
    BookingAPIView,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[Appointment],
):
    queryset = Appointment.objects.select_related("branch")
    serializer_class = AppointmentSerializer
    filter_backends = [filters.DjangoFilterBackend]
    filterset_class = AppointmentFilter

    def _actor(self) -> services.Actor:
        return services.Actor.user(self.request.user)

    @extend_schema(
        request=BookingRequestSerializer,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={201: AppointmentSerializer, **IDEMPOTENCY_RESPONSES, 409: SLOT_TAKEN},
    )
    @idempotent
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        region = request.company.country  # type: ignore[attr-defined]
        params = BookingRequestSerializer(
            data=request.data, context={"request": request, "region": region}
        )
        params.is_valid(raise_exception=True)
        data = params.validated_data
        try:
            customer = data["customer"]
            if isinstance(customer, dict):
                customer = self._caller(customer["name"], customer["phone"], region)
            appointment = saga.book(
                service=data["service"],
                staff=data["staff"],
                start=data["start"],
                customer=customer,
                actor=self._actor(),
                source=AppointmentSource.WEB,
                notes=data["notes"],
            )
        except BookingError as exc:
            raise as_api_error(exc) from None
        except InvalidPhone as exc:
            raise APIError(
                "validation_error", str(exc), 400, {"customer": {"phone": [str(exc)]}}
            ) from None
        return Response(self._present(appointment), status=status.HTTP_201_CREATED)

    @extend_schema(
        request=CancelRequestSerializer,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={200: AppointmentSerializer, **IDEMPOTENCY_RESPONSES},
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        appointment = self.get_object()  # another company's id is a 404 before anything
        params = CancelRequestSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        try:
            appointment = services.cancel_appointment(
                appointment, actor=self._actor(), reason=params.validated_data["reason"]
            )
        except BookingError as exc:
            raise as_api_error(exc) from None
        return Response(self._present(appointment))

    @extend_schema(
        request=RescheduleRequestSerializer,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={200: AppointmentSerializer, **IDEMPOTENCY_RESPONSES, 409: SLOT_TAKEN},
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def reschedule(self, request: Request, pk: str | None = None) -> Response:
        appointment = self.get_object()
        params = RescheduleRequestSerializer(data=request.data, context={"request": request})
        params.is_valid(raise_exception=True)
        try:
            appointment = services.reschedule_appointment(
                appointment,
                start=params.validated_data["start"],
                staff=params.validated_data.get("staff"),
                actor=self._actor(),
            )
        except BookingError as exc:
            raise as_api_error(exc) from None
        return Response(self._present(appointment))

    def _caller(self, name: str, phone: str, region: str) -> Customer | services.NewCaller:
        """The customer with this phone, or a new caller the booking creates in its own
        transaction: a refused booking leaves no customer behind (bad input changes
        nothing), also when concurrent bookings race for the slot."""
        known = Customer.objects.filter(phone=normalize_phone(phone, region)).first()
        return known if known is not None else services.NewCaller(name, phone, region)

    def _present(self, appointment: Appointment) -> dict[str, Any]:
        return dict(AppointmentSerializer(appointment).data)

    def get_permissions(self) -> Sequence[Any]:
        # Cancelling and moving change an appointment; DRF would ask for "add" on POST.
        if self.action in ("cancel", "reschedule"):
            return [ChangePermission()]
        return super().get_permissions()


class AvailabilityView(BookingAPIView, APIView):
    """Free slots of a service, per staff member, in the branch's offset."""

    def get_queryset(self) -> QuerySet[Service]:  # for RolePermissions: reading services
        return Service.objects.all()

    @extend_schema(
        parameters=[
            OpenApiParameter("service", int, required=True),
            OpenApiParameter("date", str, required=True, description="YYYY-MM-DD, branch time"),
            OpenApiParameter("date_to", str, description="YYYY-MM-DD; at most 31 days in all"),
            OpenApiParameter("staff", int),
        ],
        responses=AvailabilitySerializer,
    )
    def get(self, request: Request) -> Response:
        params = AvailabilityQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        query = params.validated_data
        staff = query.get("staff")
        calendar = CalendarBusy()
        slots = find_slots(
            query["service"],
            query["date"],
            query["date_to"],
            staff_id=staff.pk if staff else None,
            extra_busy=calendar,
        )
        zones = dict(
            StaffMember.objects.filter(pk__in={s.staff_id for s in slots}).values_list(
                "pk", "branch__timezone"
            )
        )
        return Response(
            {
                "slots": [
                    {
                        "start": slot.start.astimezone(ZoneInfo(zones[slot.staff_id])).isoformat(),
                        "end": slot.end.astimezone(ZoneInfo(zones[slot.staff_id])).isoformat(),
                        "staff": slot.staff_id,
                    }
                    for slot in slots
                ],
                "calendar": calendar.state.value,
            }
        )
