"""OpenAPI pieces every app's API shares: the error body, pagination, page parameters.

Documentation only: these serializers describe what the views return and are never used to
render a response.
"""

from typing import Any

from drf_spectacular.utils import OpenApiParameter, inline_serializer
from rest_framework import serializers

PAGE_PARAMS = [
    OpenApiParameter("page", int, description="Page number, 1 or more (default 1)."),
    OpenApiParameter("per_page", int, description="Items per page, 1..100 (default 20)."),
]


# The body of every 4xx answer (mcpcontrol.api.errors). Inline: a declared field named
# `fields` would shadow Serializer.fields for type checkers.
_ERROR_FIELDS: dict[str, serializers.Field[Any, Any, Any, Any]] = {
    "error": serializers.CharField(help_text='A code such as "validation_error" or "not_found".'),
    "message": serializers.CharField(help_text="A human-readable sentence."),
    "fields": serializers.DictField(
        required=False, help_text="validation_error only: the field errors, keyed by field name."
    ),
}
ERROR = inline_serializer("Error", _ERROR_FIELDS)
# 409 of an update whose `version` is stale (or that lost a race with a concurrent write).
VERSION_CONFLICT = inline_serializer(
    "VersionConflict",
    {
        **_ERROR_FIELDS,
        "current_version": serializers.IntegerField(required=False),
        "provided_version": serializers.IntegerField(required=False),
    },
)


class PaginationSerializer(serializers.Serializer[Any]):
    total = serializers.IntegerField()
    page = serializers.IntegerField()
    per_page = serializers.IntegerField()
    total_pages = serializers.IntegerField()


def errors(*codes: int) -> dict[int, serializers.Serializer[Any]]:
    """`responses` entries: each status code answers the shared error body."""
    return dict.fromkeys(codes, ERROR)
