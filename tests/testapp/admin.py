"""Admin for the test-only models: autocomplete, raw-id and related filters."""

from __future__ import annotations

from django.contrib import admin

from tenants.admin_base import TenantAdmin
from tests.testapp.models import Book, Shelf, Tag


@admin.register(Shelf)
class ShelfAdmin(TenantAdmin):
    search_fields = ["name"]


@admin.register(Tag)
class TagAdmin(TenantAdmin):
    search_fields = ["label"]


@admin.register(Book)
class BookAdmin(TenantAdmin):
    list_display = ["title", "shelf"]
    list_filter = ["shelf"]
    search_fields = ["title"]
    autocomplete_fields = ["shelf"]


@admin.register(Book.tags.through)
class BookTagAdmin(TenantAdmin):
    list_filter = ["tag", "book__shelf"]
    raw_id_fields = ["book", "tag"]
