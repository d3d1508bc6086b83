"""Factories for test data. Tenant rows are built inside ``tenant_context``.

``TENANT_FACTORIES`` maps every tenant model to a factory; a test fails when a new
tenant model has none, so the isolation tests always cover every model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import factory
from django.contrib.auth import get_user_model
from django.db import models

from tenants.models import Branch, Company, Membership, Role
from tests.testapp.models import Book, BookTag, Shelf, Tag


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


# Every tenant model → how to make one inside the bound tenant.
TENANT_FACTORIES: dict[type[models.Model], Callable[[], models.Model]] = {
    Branch: BranchFactory,
    Shelf: ShelfFactory,
    Tag: TagFactory,
    Book: BookFactory,
    BookTag: BookTagFactory,
}
