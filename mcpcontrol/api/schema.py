"""OpenAPI pieces every app's API shares: the error body, the JWT pairs.

Documentation only: these serializers describe what the views return and are never used to
render a response.
"""

from typing import Any

from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

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


def errors(*codes: int) -> dict[int, serializers.Serializer[Any]]:
    """`responses` entries: each status code answers the shared error body."""
    return dict.fromkeys(codes, ERROR)


class JwtPairSerializer(serializers.Serializer[Any]):
    """mcpcontrol.api.jwt.jwt_issue: a scoped access + refresh pair."""

    access_token = serializers.CharField()
    refresh_token = serializers.CharField()
    expires_in = serializers.IntegerField(help_text="Access token lifetime, in seconds.")
    refresh_expires_in = serializers.IntegerField(help_text="Refresh token lifetime, in seconds.")
    token_type = serializers.CharField(help_text='Always "Bearer".')
    scope = serializers.CharField(help_text="The granted scopes, space-separated.")


class TokenGeneratedSerializer(serializers.Serializer[Any]):
    success = serializers.BooleanField()
    tokens = JwtPairSerializer()


class TokenPairSerializer(serializers.Serializer[Any]):
    """POST /auth/token: simplejwt's pair; the access token carries the role's scopes."""

    access = serializers.CharField()
    refresh = serializers.CharField()
