from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from bookings.api.views import (
    AppointmentViewSet,
    AvailabilityView,
    CustomerViewSet,
    ServiceViewSet,
    StaffViewSet,
)

router = SimpleRouter()
router.register("services", ServiceViewSet, basename="service")
router.register("staff", StaffViewSet, basename="staff")
router.register("customers", CustomerViewSet, basename="customer")
router.register("appointments", AppointmentViewSet, basename="appointment")

urlpatterns = [
    path("availability/", AvailabilityView.as_view(), name="availability"),
    *router.urls,
]
