"""Page/per_page pagination with a 400 naming the bad parameter (not DRF's silent clamping)."""

import math
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 100


def _int_param(request: Request, name: str, default: int, low: int, high: int | None) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError({name: [f"{name} must be an integer."]}) from None
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ValidationError({name: [f"{name} must be {bound}."]})
    return value


@dataclass(frozen=True)
class Page:
    items: list[Any]
    total: int
    page: int
    per_page: int

    @property
    def total_pages(self) -> int:
        return math.ceil(self.total / self.per_page) if self.total else 0

    def meta(self) -> dict[str, int]:
        return {
            "total": self.total,
            "page": self.page,
            "per_page": self.per_page,
            "total_pages": self.total_pages,
        }


def paginate(request: Request, queryset: QuerySet[Any]) -> Page:
    """One COUNT and one LIMIT/OFFSET query, whatever the page size."""
    page = _int_param(request, "page", 1, 1, None)
    per_page = _int_param(request, "per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE)
    total = queryset.count()
    start = (page - 1) * per_page
    items = list(queryset[start : start + per_page]) if start < total else []
    return Page(items=items, total=total, page=page, per_page=per_page)
