"""Shapes of /api/v1/tokens. The token value appears only in TokenDetailSerializer."""

from typing import Any

from rest_framework import serializers

from mcpcontrol.api.permissions import ALL_SCOPES
from mcpcontrol.api.validators import reject_nul
from tokens.models import Token


class TokenSerializer(serializers.ModelSerializer[Token]):
    id = serializers.SerializerMethodField()
    is_expired = serializers.BooleanField(read_only=True)
    # True when the stored value cannot be decrypted (this row only; see Token.is_unreadable).
    unreadable = serializers.BooleanField(source="is_unreadable", read_only=True)

    class Meta:
        model = Token
        fields: tuple[str, ...] = ("id", "type", "identifier", "email", "expires_at", "is_expired", "metadata",
                  "created_at", "updated_at", "unreadable")  # fmt: skip

    def get_id(self, token: Token) -> str:
        return str(token.pk)


class TokenDetailSerializer(TokenSerializer):
    """For the owner only: the decrypted token value. It comes in the context as
    "token_value" from services.token_reveal, so that every read of it is audited. An
    unreadable value is null, with "error" saying why (never a 500)."""

    token = serializers.SerializerMethodField()
    user_id = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField()

    class Meta(TokenSerializer.Meta):
        fields = (*TokenSerializer.Meta.fields, "user_id", "token", "error")

    def get_user_id(self, token: Token) -> str:
        return str(token.user_id)

    def get_token(self, token: Token) -> str | None:
        value = self.context["token_value"]
        return None if value is None else str(value)

    def get_error(self, token: Token) -> str | None:
        return self.context.get("error")


class TokenRenewedSerializer(TokenSerializer):
    """PUT /tokens/{id}/refresh: the token as stored, with the new value the caller sent."""

    token = serializers.CharField()

    class Meta(TokenSerializer.Meta):
        fields = (*TokenSerializer.Meta.fields, "token")


class TokenWriteSerializer(serializers.Serializer[Any]):
    type = serializers.ChoiceField(choices=Token.Type.choices)
    identifier = serializers.CharField(max_length=255)
    token = serializers.CharField(max_length=20000, write_only=True, trim_whitespace=False)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)
    metadata = serializers.DictField(required=False, validators=[reject_nul])
    email = serializers.EmailField(required=False, allow_blank=True, max_length=254)


class TokenRenewSerializer(serializers.Serializer[Any]):
    new_access_token = serializers.CharField(max_length=20000, trim_whitespace=False)
    new_expires_at = serializers.DateTimeField(allow_null=True)
    new_refresh_token = serializers.CharField(
        max_length=20000, required=False, allow_blank=True, trim_whitespace=False
    )


class TokenGenerateSerializer(serializers.Serializer[Any]):
    requested_scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=ALL_SCOPES), min_length=1, max_length=len(ALL_SCOPES)
    )
    expires_in_hours = serializers.IntegerField(min_value=1, max_value=24)
    description = serializers.CharField(max_length=500, required=False, allow_blank=True)
