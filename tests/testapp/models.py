"""Test-only tenant models exercising every relation kind the manager must scope."""

from __future__ import annotations

from django.db import models

from tenants.models import TenantModel


class Shelf(TenantModel):
    name = models.CharField(max_length=50)

    class Meta(TenantModel.Meta):
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["company", "name"], name="shelf_name")]

    def __str__(self) -> str:
        return self.name


class Tag(TenantModel):
    label = models.CharField(max_length=50)

    class Meta(TenantModel.Meta):
        ordering = ["label"]

    def __str__(self) -> str:
        return self.label


class Book(TenantModel):
    shelf = models.ForeignKey(Shelf, on_delete=models.CASCADE, related_name="books")
    title = models.CharField(max_length=100)
    tags: models.ManyToManyField[Tag, BookTag] = models.ManyToManyField(
        Tag, through="BookTag", related_name="books"
    )

    class Meta(TenantModel.Meta):
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title


class BookTag(TenantModel):
    book = models.ForeignKey(Book, on_delete=models.CASCADE)
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE)

    class Meta(TenantModel.Meta):
        ordering = ["pk"]
