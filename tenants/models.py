"""Companies (the tenants), their branches and who works for them."""

from __future__ import annotations

import zoneinfo
from typing import Any, ClassVar

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from tenants.context import TenantMismatch, TenantNotSet, require_scope
from tenants.managers import TenantManager


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(
            _("%(value)s is not a known IANA time zone."), params={"value": value}
        )


def validate_country(value: str) -> None:
    if value not in phonenumbers.SUPPORTED_REGIONS:
        raise ValidationError(
            _("%(value)s is not an ISO 3166 country code."), params={"value": value}
        )


class Company(models.Model):
    """The tenant. Not a tenant model itself: it *is* the tenant."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=60, unique=True)
    timezone = models.CharField(
        max_length=64, default="Europe/Berlin", validators=[validate_timezone]
    )
    country = models.CharField(max_length=2, default="DE", validators=[validate_country])
    active = models.BooleanField(default=True)
    auto_provision_agents = models.BooleanField(
        default=False,
        help_text=_("Provision a Retell voice agent for every new branch (after commit)."),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "companies"

    def __str__(self) -> str:
        return self.name


class TenantModel(models.Model):
    """Base of every model that belongs to a company.

    Its default *and* base manager is the tenant manager, so Django's own machinery
    (saving, refreshing, deleting, related access) is scoped as well.
    """

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="+")

    objects: ClassVar[TenantManager[Any]] = TenantManager()

    class Meta:
        abstract = True
        base_manager_name = "objects"
        default_manager_name = "objects"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.assign_company()
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        self.assign_company()
        return super().delete(*args, **kwargs)

    def assign_company(self) -> None:
        """Fill ``company`` from the bound tenant, or refuse a row of another company."""
        scope = require_scope()
        if self.company_id is None:
            if scope.company_id is None:
                raise TenantNotSet(
                    f"{type(self).__name__} created under all_tenants() needs an explicit company"
                )
            self.company_id = scope.company_id
        elif scope.company_id is not None and self.company_id != scope.company_id:
            raise TenantMismatch(
                f"{type(self).__name__} of company {self.company_id} written while "
                f"company {scope.company_id} is bound"
            )


class Branch(TenantModel):
    """One location of a company, with its own phone line and time zone."""

    name = models.CharField(max_length=200)
    phone = models.CharField(max_length=20, blank=True, help_text=_("E.164, e.g. +49301234567"))
    timezone = models.CharField(
        max_length=64, default="Europe/Berlin", validators=[validate_timezone]
    )
    country = models.CharField(max_length=2, default="DE", validators=[validate_country])
    address = models.CharField(max_length=300, blank=True)
    # NULL, not "": unique per company only when set.
    retell_agent_id = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001
    retell_llm_id = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001
    transfer_phone = models.CharField(
        max_length=20,
        blank=True,
        help_text=_("E.164; where the agent transfers callers to a person (blank: phone)."),
    )
    agent_provisioned_at = models.DateTimeField(null=True, blank=True)
    agent_provision_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta(TenantModel.Meta):
        ordering = ["name"]
        verbose_name_plural = "branches"
        constraints = [
            models.UniqueConstraint(fields=["company", "name"], name="branch_unique_name"),
            models.UniqueConstraint(
                fields=["company", "retell_agent_id"], name="branch_unique_agent"
            ),
            models.UniqueConstraint(fields=["company", "retell_llm_id"], name="branch_unique_llm"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from tenants.phones import InvalidPhone, normalize_phone

        for field in ("phone", "transfer_phone"):
            value = getattr(self, field)
            if value:
                try:
                    setattr(self, field, normalize_phone(value, self.country))
                except InvalidPhone as exc:
                    raise ValidationError({field: str(exc)}) from exc


class Role(models.TextChoices):
    OWNER = "owner", _("Owner")
    MANAGER = "manager", _("Manager")
    STAFF = "staff", _("Staff")


class Membership(models.Model):
    """A user's role in one company. Named exception: it links a user to a tenant."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.STAFF)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "company"], name="membership_unique_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.company} ({self.role})"
