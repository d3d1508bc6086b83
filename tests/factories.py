"""Factories for test data. Tenant rows are built inside ``tenant_context``.

``TENANT_FACTORIES`` maps every tenant model to a factory; a test fails when a new
tenant model has none, so the isolation tests always cover every model.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import time, timedelta
from typing import Any

import factory
from django.contrib.auth import get_user_model
from django.db import models
from django.utils import timezone

from bookings.models import (
    Appointment,
    AppointmentHistory,
    Closure,
    Customer,
    IdempotencyRecord,
    Service,
    StaffMember,
    StaffService,
    TimeOff,
    WorkingHours,
)
from integrations.models import Integration, OutboxJob
from tenants.models import Branch, Company, Membership, Role
from tests.testapp.models import Book, BookTag, Shelf, Tag
from webhooks.models import CallLog, Payment, WebhookEndpoint, WebhookEvent


class CompanyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Company
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Company {n}")
    slug = factory.Sequence(lambda n: f"company-{n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    is_staff = True
    password = factory.PostGenerationMethodCall("set_password", "pw")

    @factory.post_generation
    def _save(obj, create: bool, extracted: Any, **kwargs: Any) -> None:
        if create:
            obj.save()


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    company = factory.SubFactory(CompanyFactory)
    role = Role.STAFF


class BranchFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Branch

    name = factory.Sequence(lambda n: f"Branch {n}")
    phone = "+49301234567"


class ShelfFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Shelf

    name = factory.Sequence(lambda n: f"Shelf {n}")


class TagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tag

    label = factory.Sequence(lambda n: f"tag-{n}")


class BookFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Book

    shelf = factory.SubFactory(ShelfFactory)
    title = factory.Sequence(lambda n: f"Book {n}")


class BookTagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BookTag

    book = factory.SubFactory(BookFactory)
    tag = factory.SubFactory(TagFactory)


class ServiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Service

    name = factory.Sequence(lambda n: f"Service {n}")
    duration_minutes = 30
    slot_interval_minutes = 30
    min_notice_minutes = 0
    horizon_days = 90


class StaffMemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StaffMember

    branch = factory.SubFactory(BranchFactory)
    name = factory.Sequence(lambda n: f"Staff {n}")


class StaffServiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StaffService

    staff = factory.SubFactory(StaffMemberFactory)
    service = factory.SubFactory(ServiceFactory)


class WorkingHoursFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WorkingHours

    staff = factory.SubFactory(StaffMemberFactory)
    weekday = 0
    start = time(9)
    end = time(17)


class TimeOffFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TimeOff

    staff = factory.SubFactory(StaffMemberFactory)
    start = factory.LazyFunction(lambda: timezone.now() + timedelta(days=300))
    end = factory.LazyAttribute(lambda o: o.start + timedelta(days=1))


class ClosureFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Closure

    branch = factory.SubFactory(BranchFactory)
    start_date = factory.LazyFunction(lambda: timezone.localdate() + timedelta(days=300))
    end_date = factory.LazyAttribute(lambda o: o.start_date)


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    name = factory.Sequence(lambda n: f"Customer {n}")
    phone = factory.Sequence(lambda n: f"+4915112{n % 100000:05d}")


class AppointmentFactory(factory.django.DjangoModelFactory):
    """A confirmed appointment far in the future, straight into the table."""

    class Meta:
        model = Appointment

    staff = factory.SubFactory(StaffMemberFactory)
    branch = factory.LazyAttribute(lambda o: o.staff.branch)
    service = factory.SubFactory(ServiceFactory)
    customer = factory.SubFactory(CustomerFactory)
    start = factory.Sequence(
        lambda n: timezone.now().replace(microsecond=0, second=0) + timedelta(days=200, hours=n)
    )
    end = factory.LazyAttribute(lambda o: o.start + timedelta(minutes=30))
    busy_until = factory.LazyAttribute(lambda o: o.end)


class AppointmentHistoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AppointmentHistory

    appointment = factory.SubFactory(AppointmentFactory)
    action = "created"
    actor = "system"


class IdempotencyRecordFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = IdempotencyRecord

    user_id = 1
    key = factory.Sequence(lambda n: f"key-{n}")
    request_hash = "0" * 64


class WebhookEndpointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WebhookEndpoint

    # One endpoint per company and provider: take the first provider still free.
    provider = factory.LazyFunction(
        lambda: next(
            p
            for p in ("stripe", "retell", "calcom")
            if not WebhookEndpoint.objects.filter(provider=p).exists()
        )
    )
    secret = factory.Sequence(lambda n: f"whsec_test_{n}")


class WebhookEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WebhookEvent

    endpoint = factory.SubFactory(WebhookEndpointFactory)
    provider = factory.LazyAttribute(lambda o: o.endpoint.provider)
    event_type = "payment_intent.succeeded"
    dedup_key = factory.Sequence(lambda n: f"evt_test_{n}")
    payload = factory.LazyAttribute(lambda o: {"id": o.dedup_key, "type": o.event_type})


class CallLogFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CallLog

    call_id = factory.Sequence(lambda n: f"call_test_{n}")


class PaymentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Payment

    payment_intent_id = factory.Sequence(lambda n: f"pi_test_{n}")
    amount = 2500
    currency = "eur"
    status = "succeeded"


# Every tenant model → how to make one inside the bound tenant, in dependency order.
class IntegrationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Integration

    # One row per company and provider: take the first provider still free.
    provider = factory.LazyFunction(
        lambda: next(
            p
            for p in ("calcom", "retell", "stripe")
            if not Integration.objects.filter(provider=p).exists()
        )
    )
    status = "broken"
    last_error = "HTTP 401: invalid API key"


class OutboxJobFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OutboxJob

    kind = "calendar.cancel"
    key = factory.Sequence(lambda n: f"calendar.cancel:{n}")
    payload = factory.LazyFunction(dict)
    status = "failed"
    last_error = "IntegrationError: calcom cancel_booking: HTTP 404"


TENANT_FACTORIES: dict[type[models.Model], Callable[[], models.Model]] = {
    Branch: BranchFactory,
    Service: ServiceFactory,
    StaffMember: StaffMemberFactory,
    StaffService: StaffServiceFactory,
    WorkingHours: WorkingHoursFactory,
    TimeOff: TimeOffFactory,
    Closure: ClosureFactory,
    Customer: CustomerFactory,
    Appointment: AppointmentFactory,
    AppointmentHistory: AppointmentHistoryFactory,
    IdempotencyRecord: IdempotencyRecordFactory,
    WebhookEndpoint: WebhookEndpointFactory,
    Integration: IntegrationFactory,
    OutboxJob: OutboxJobFactory,
    WebhookEvent: WebhookEventFactory,
    CallLog: CallLogFactory,
    Payment: PaymentFactory,
    Shelf: ShelfFactory,
    Tag: TagFactory,
    Book: BookFactory,
    BookTag: BookTagFactory,
}
