"""One pagination class for every list endpoint: page/per_page, with a 400 naming a bad
parameter (not DRF's silent clamping), in the envelope the seed shows for that endpoint.

Seed 004 nests the counts under "pagination" for /servers and /tokens, and puts them at the
top level for the admin lists and the audit log; real clients follow each. A view picks
its envelope with `PagePagination.of(key, envelope)`, never by writing a response itself.
"""

import math
from typing import Any, Literal

from django.db.models import QuerySet
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response

DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 100
Envelope = Literal["nested", "flat"]


def _int_param(request: Request, name: str, default: int, low: int, high: int | None) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if len(raw) > 12 or not raw.lstrip("-").isdigit():
        raise ValidationError({name: [f"{name} must be an integer."]})
    value = int(raw)
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ValidationError({name: [f"{name} must be {bound}."]})
    return value


class PagePagination(BasePagination):
    """One COUNT and one LIMIT/OFFSET query, whatever the page size."""

    results_key = "results"
    envelope: Envelope = "nested"
    default_per_page = DEFAULT_PER_PAGE

    @classmethod
    def of(
        cls, key: str, envelope: Envelope, *, per_page: int = DEFAULT_PER_PAGE
    ) -> type["PagePagination"]:
        attrs = {"results_key": key, "envelope": envelope, "default_per_page": per_page}
        return type(f"{key.title()}{envelope.title()}Pagination", (cls,), attrs)

    def paginate_queryset(  # type: ignore[override]
        self, queryset: QuerySet[Any] | list[Any], request: Request, view: Any = None
    ) -> list[Any]:
        self.page = _int_param(request, "page", 1, 1, None)
        self.per_page = _int_param(request, "per_page", self.default_per_page, 1, MAX_PER_PAGE)
        # A queryset is counted and sliced by the database; a list (merged in Python) by len().
        self.total = queryset.count() if isinstance(queryset, QuerySet) else len(queryset)
        start = (self.page - 1) * self.per_page
        return list(queryset[start : start + self.per_page]) if start < self.total else []

    def meta(self) -> dict[str, int]:
        pages = math.ceil(self.total / self.per_page) if self.total else 0
        return {"total": self.total, "page": self.page, "per_page": self.per_page,
                "total_pages": pages}  # fmt: skip

    def get_paginated_response(self, data: Any) -> Response:
        if self.envelope == "nested":
            return Response({self.results_key: data, "pagination": self.meta()})
        return Response({self.results_key: data, **self.meta()})

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        counts = {
            name: {"type": "integer"} for name in ("total", "page", "per_page", "total_pages")
        }
        if self.envelope == "nested":
            properties: dict[str, Any] = {
                self.results_key: schema,
                "pagination": {"type": "object", "properties": counts, "required": list(counts)},
            }
        else:
            properties = {self.results_key: schema, **counts}
        return {"type": "object", "properties": properties, "required": list(properties)}

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {"name": "page", "in": "query", "required": False, "schema": {"type": "integer"},
             "description": "Page number, 1 or more (default 1)."},
            {"name": "per_page", "in": "query", "required": False,
             "schema": {"type": "integer"},
             "description": f"Items per page, 1..{MAX_PER_PAGE} (default {self.default_per_page})."},
        ]  # fmt: skip
