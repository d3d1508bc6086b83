"""Personas over every admin page: another company's objects are never listed, always 404."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db import models
from django.test import Client
from django.urls import reverse

from tenants.context import all_tenants
from tenants.models import Company
from tests.conftest import World, login

REGISTERED = sorted(admin.site._registry, key=lambda m: m._meta.label)


def _ids(model: type[models.Model]) -> str:
    return model._meta.label


def mine_and_theirs(world: World, model: type[models.Model]) -> tuple[Any, Any]:
    """Company a's object and company b's object of ``model``."""
    if model is Company:
        return world.a, world.b
    if model is get_user_model():
        return world.staff_a, world.outsider
    return world.rows["a"][model], world.rows["b"][model]


def _url(model: type[models.Model], view: str, *args: Any) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def _listed_pks(client: Client, url: str) -> set[Any] | None:
    response = client.get(url)
    if response.status_code == 403:
        return None
    assert response.status_code == 200, (url, response.status_code)
    return {obj.pk for obj in response.context["cl"].result_list}


def test_every_registered_model_is_covered(world: World) -> None:
    for model in REGISTERED:
        mine, theirs = mine_and_theirs(world, model)
        assert mine.pk != theirs.pk


@pytest.mark.parametrize("model", REGISTERED, ids=_ids)
@pytest.mark.parametrize("persona", ["owner_a", "staff_a"])
def test_the_changelist_never_lists_another_companys_objects(
    world: World, model: Any, persona: str
) -> None:
    mine, theirs = mine_and_theirs(world, model)
    listed = _listed_pks(login(getattr(world, persona)), _url(model, "changelist"))
    if persona == "owner_a":
        assert listed is not None, "an owner can open every admin page"
    if listed is not None:
        assert theirs.pk not in listed
        assert mine.pk in listed or model is get_user_model()


@pytest.mark.parametrize("model", REGISTERED, ids=_ids)
@pytest.mark.parametrize("view", ["change", "delete", "history"])
def test_another_companys_object_pages_are_404(world: World, model: Any, view: str) -> None:
    mine, theirs = mine_and_theirs(world, model)
    client = login(world.owner_a)
    own_status = client.get(_url(model, view, mine.pk)).status_code
    if own_status == 403:  # the view is closed to this role for every object alike
        assert client.get(_url(model, view, theirs.pk)).status_code == 403
        return
    assert own_status == 200
    assert client.get(_url(model, view, theirs.pk)).status_code == 404


@pytest.mark.parametrize("model", REGISTERED, ids=_ids)
def test_the_outsider_sees_the_mirror_image(world: World, model: Any) -> None:
    mine, _theirs = mine_and_theirs(world, model)
    client = login(world.outsider)
    listed = _listed_pks(client, _url(model, "changelist"))
    assert listed is not None
    assert mine.pk not in listed
    assert client.get(_url(model, "change", mine.pk)).status_code == 404


@pytest.mark.parametrize("model", REGISTERED, ids=_ids)
def test_a_superuser_sees_every_company(world: World, superuser: Any, model: Any) -> None:
    mine, theirs = mine_and_theirs(world, model)
    listed = _listed_pks(login(superuser), _url(model, "changelist"))
    assert listed is not None
    assert {mine.pk, theirs.pk} <= listed


@pytest.mark.parametrize("model", [m for m in REGISTERED if m is not Company], ids=_ids)
def test_bulk_delete_action_cannot_reach_another_company(world: World, model: Any) -> None:
    _, theirs = mine_and_theirs(world, model)
    login(world.owner_a).post(
        _url(model, "changelist"),
        {"action": "delete_selected", "_selected_action": [theirs.pk], "post": "yes"},
    )
    with all_tenants("test: check the other company's row survived"):
        assert model._default_manager.filter(pk=theirs.pk).exists()


def test_autocomplete_offers_only_the_companys_objects(world: World) -> None:
    from tests.testapp.models import Shelf

    response = login(world.owner_a).get(
        "/admin/autocomplete/",
        {"app_label": "testapp", "model_name": "book", "field_name": "shelf", "term": ""},
    )
    assert response.status_code == 200
    ids = {int(r["id"]) for r in response.json()["results"]}
    assert ids == {world.rows["a"][Shelf].pk}


def test_raw_id_popup_lists_only_the_companys_objects(world: World) -> None:
    from tests.testapp.models import Tag

    url = _url(Tag, "changelist") + "?_to_field=id&_popup=1"
    assert _listed_pks(login(world.owner_a), url) == {world.rows["a"][Tag].pk}


def test_a_foreign_object_cannot_be_picked_in_a_form(world: World) -> None:
    from tests.testapp.models import Book, Shelf

    book = world.rows["a"][Book]
    response = login(world.owner_a).post(
        _url(Book, "change", book.pk),
        {
            "title": "moved",
            "shelf": world.rows["b"][Shelf].pk,
            "booktag_set-TOTAL_FORMS": 0,
            "booktag_set-INITIAL_FORMS": 0,
        },
    )
    assert response.status_code == 200  # the form comes back with an error
    assert "shelf" in response.context["adminform"].form.errors
    with all_tenants("test"):
        assert Book.objects.get(pk=book.pk).shelf_id == world.rows["a"][Shelf].pk


def test_a_superusers_form_cannot_mix_two_companies(world: World, superuser: Any) -> None:
    from tests.testapp.models import Book, Shelf

    response = login(superuser).post(
        _url(Book, "add"),
        {"company": world.a.pk, "title": "mixed", "shelf": world.rows["b"][Shelf].pk},
    )
    assert response.status_code == 200
    assert "shelf" in response.context["adminform"].form.errors
    with all_tenants("test"):
        assert not Book.objects.filter(title="mixed").exists()


def test_related_filters_list_only_the_companys_values(world: World) -> None:
    from tenants.context import tenant_context
    from tests.factories import BookFactory
    from tests.testapp.models import Book, Shelf

    with tenant_context(world.a):  # a filter with a single choice is not shown
        second = BookFactory().shelf
    response = login(world.owner_a).get(_url(Book, "changelist"))
    shelf_filter = next(
        spec for spec in response.context["cl"].filter_specs if spec.field_path == "shelf"
    )
    assert {pk for pk, _ in shelf_filter.lookup_choices} == {world.rows["a"][Shelf].pk, second.pk}
    filtered = _listed_pks(
        login(world.owner_a),
        _url(Book, "changelist") + f"?shelf__id__exact={world.rows['b'][Shelf].pk}",
    )
    assert filtered == set()


def test_staff_cannot_edit_what_their_role_only_views(world: World) -> None:
    from tenants.models import Branch

    branch = world.rows["a"][Branch]
    client = login(world.staff_a)
    assert client.get(_url(Branch, "change", branch.pk)).status_code == 200  # read-only view
    response = client.post(_url(Branch, "change", branch.pk), {"name": "hijacked"})
    assert response.status_code == 403


def test_a_manager_cannot_edit_a_superuser(world: World, superuser: Any) -> None:
    from tests.factories import MembershipFactory

    MembershipFactory(user=superuser, company=world.a)
    client = login(world.owner_a)
    assert client.get(_url(get_user_model(), "change", superuser.pk)).status_code == 404


def test_the_admin_pages_are_rendered_inside_the_tenant(world: World) -> None:
    # TemplateResponses render lazily; the middleware renders them before unbinding.
    from tenants.models import Branch

    response = login(world.owner_a).get(_url(Branch, "changelist"))
    assert world.rows["a"][Branch].name in response.content.decode()
    assert world.rows["b"][Branch].name not in response.content.decode()
