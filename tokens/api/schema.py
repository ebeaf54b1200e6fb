"""Response shapes of /api/v1/tokens and /auth/token, for the OpenAPI schema only."""

from typing import Any

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from mcpcontrol.api.schema import PaginationSerializer
from tokens.api.serializers import TokenSerializer


@extend_schema_serializer(many=False)
class TokenListSerializer(serializers.Serializer[Any]):
    tokens = TokenSerializer(many=True)
    pagination = PaginationSerializer()


class JwtPairSerializer(serializers.Serializer[Any]):
    """tokens.services.jwt_issue: a scoped access + refresh pair."""

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
