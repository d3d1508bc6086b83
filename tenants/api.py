"""Bind the tenant in DRF, where token users become known (PITFALLS: DRF auth)."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

from django.http import HttpRequest
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.schemas.inspectors import ViewInspector
from rest_framework.views import APIView

from askpro.api_errors import ErrorResponsesSchema
from tenants.resolution import (
    COMPANY_HEADER,
    CompanyAmbiguous,
    CompanyNotFound,
    resolve_company,
)

COMPANY_PARAMETER = OpenApiParameter(
    "X-Company",
    str,
    OpenApiParameter.HEADER,
    description="Slug of the company to act for; needed only by users of several companies. "
    "A company you don't belong to is a 404.",
)


class TenantScopedSchema(ErrorResponsesSchema):
    """Every tenant-scoped operation takes ``X-Company`` and answers the common errors."""

    def get_override_parameters(self) -> list[Any]:
        return [*super().get_override_parameters(), COMPANY_PARAMETER]


class TenantScopedMixin:
    """Resolve the acting company right after authentication, before permissions and
    throttles run, and keep it bound until the response is finalized."""

    _tenant_stack: ExitStack
    schema: ViewInspector | None = TenantScopedSchema()

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        self._tenant_stack = ExitStack()
        with self._tenant_stack:
            return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        self.perform_authentication(request)  # type: ignore[attr-defined]
        if request.user and request.user.is_authenticated:
            slug = request.META.get(COMPANY_HEADER)
            try:
                acting = resolve_company(request.user, slug)
            except CompanyNotFound:
                raise NotFound("No such company.") from None
            except CompanyAmbiguous:
                raise ValidationError(
                    {"X-Company": ["You belong to several companies: name one in X-Company."]}
                ) from None
            request.company = acting.company  # type: ignore[attr-defined]
            request.company_role = acting.role  # type: ignore[attr-defined]
            self._tenant_stack.enter_context(acting.binding())
        super().initial(request, *args, **kwargs)  # type: ignore[misc]


class MeView(TenantScopedMixin, APIView):
    """Who is calling, and for which company."""

    @extend_schema(
        responses=inline_serializer(
            "Me",
            {
                "username": serializers.CharField(),
                "company": serializers.DictField(allow_null=True),
                "role": serializers.CharField(allow_null=True),
            },
        )
    )
    def get(self, request: Request) -> Response:
        company = getattr(request, "company", None)
        return Response(
            {
                "username": request.user.get_username(),
                "company": (
                    {"id": company.pk, "slug": company.slug, "name": company.name}
                    if company
                    else None
                ),
                "role": getattr(request, "company_role", None),
            }
        )
