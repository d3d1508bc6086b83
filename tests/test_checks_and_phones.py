"""The start-up check that catches unscoped company data, and phone parsing."""

from __future__ import annotations

import pytest
from django.db import models
from django.test.utils import isolate_apps

from tenants.checks import check_tenant_models
from tenants.phones import InvalidPhone, mask_phone, normalize_phone

pytestmark = pytest.mark.smoke


def _errors_for(model: type[models.Model]) -> list[str]:
    return [e.id for e in check_tenant_models() if e.obj is model]


def test_the_project_passes_its_own_check() -> None:
    assert check_tenant_models() == []


@isolate_apps("tests.testapp", attr_name="apps")
def test_a_model_with_a_company_fk_that_is_no_tenant_model_fails_start_up() -> None:
    from tenants.models import Company

    class Leaky(models.Model):  # noqa: DJ008
        company = models.ForeignKey(Company, on_delete=models.CASCADE)

        class Meta:
            app_label = "testapp"

    from unittest import mock

    with mock.patch("tenants.checks.apps.get_models", return_value=[Leaky]):
        assert _errors_for(Leaky) == ["tenants.E001"]


@isolate_apps("tests.testapp")
def test_a_tenant_unique_constraint_without_company_fails_start_up() -> None:
    from unittest import mock

    from tenants.models import TenantModel

    class Code(TenantModel):
        code = models.CharField(max_length=10, unique=True)

        class Meta(TenantModel.Meta):
            app_label = "testapp"

    with mock.patch("tenants.checks.apps.get_models", return_value=[Code]):
        assert _errors_for(Code) == ["tenants.E004"]


@isolate_apps("tests.testapp")
def test_an_implicit_many_to_many_between_tenant_models_fails_start_up() -> None:
    from unittest import mock

    from tenants.models import TenantModel

    class Colour(TenantModel):
        class Meta(TenantModel.Meta):
            app_label = "testapp"

    class Car(TenantModel):
        colours = models.ManyToManyField(Colour)

        class Meta(TenantModel.Meta):
            app_label = "testapp"

    with mock.patch("tenants.checks.apps.get_models", return_value=[Colour, Car]):
        assert _errors_for(Car) == ["tenants.E003"]


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("030 1234567", "DE", "+49301234567"),
        ("+49 30 1234567", "AT", "+49301234567"),
        ("0043 1 5123456", "DE", "+4315123456"),
        ("(212) 555-0100", "US", "+12125550100"),
    ],
)
def test_phone_numbers_are_stored_as_e164(raw: str, region: str, e164: str) -> None:
    assert normalize_phone(raw, region) == e164


@pytest.mark.parametrize(
    "raw", ["anonymous", "Private", "unknown", "", "12", "'; DROP--", "x" * 50]
)
def test_caller_id_words_and_junk_are_not_phones(raw: str) -> None:
    with pytest.raises(InvalidPhone):
        normalize_phone(raw, "DE")


def test_masking_keeps_only_the_ends() -> None:
    assert mask_phone("+49301234567") == "+49301****67"
