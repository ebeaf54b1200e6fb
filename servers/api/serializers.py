"""Request and response shapes of /api/v1/agents. (Server documents are servers.document's.)

Secrets are write-only: responses say whether one is stored, never what it is.
"""

from typing import Any

from rest_framework import serializers

from mcpcontrol.lib.ids import is_id
from servers.models import Agent


class IdField(serializers.CharField):
    """An id: a string in the API on every backend (docs/api.md, docs/storage.md), a decimal
    number or a MongoDB ObjectId; a number is accepted as input too."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=24, **kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if not is_id(value):
            raise serializers.ValidationError("Not a valid id.")
        return value


def _secret() -> serializers.CharField:
    return serializers.CharField(
        max_length=10000, required=False, allow_blank=True, allow_null=True, write_only=True,
        trim_whitespace=False, style={"input_type": "password"},
    )  # fmt: skip


class AgentSerializer(serializers.ModelSerializer[Agent]):
    id = serializers.SerializerMethodField()
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(max_length=10000, required=False, allow_blank=True)
    user_id = IdField(source="owner_id", required=False)
    config_mode = serializers.ChoiceField(
        choices=Agent.ConfigMode.choices, required=False,
        help_text="What mcp-config answers without ?mode=: gateway (new agents) or direct.",
    )  # fmt: skip

    class Meta:
        model = Agent
        fields = (
            "id", "name", "description", "user_id", "config_mode", "created_at", "updated_at",
        )  # fmt: skip
        read_only_fields = ("created_at", "updated_at")

    def get_id(self, agent: Agent) -> str:
        return str(agent.pk)


class AgentConnectionWriteSerializer(serializers.Serializer[Any]):
    """An agent's credential for a server: write-only, never returned."""

    access_token = _secret()
    api_key = _secret()
    refresh_token = _secret()
    expires_at = serializers.DateTimeField(required=False, allow_null=True)
    token_expires_at = serializers.DateTimeField(  # seed 003's column name
        required=False, allow_null=True, help_text="Seed 003's name for expires_at."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        value = attrs.get("access_token") or attrs.get("api_key")
        if not value:
            raise serializers.ValidationError({"access_token": ["Send access_token or api_key."]})
        expiry = [attrs[key] for key in ("expires_at", "token_expires_at") if key in attrs]
        if len(set(expiry)) > 1:
            raise serializers.ValidationError(
                {"token_expires_at": ["expires_at and token_expires_at say different things."]}
            )
        return {
            "access_token": value,
            "refresh_token": attrs.get("refresh_token") or None,
            "expires_at": expiry[0] if expiry else None,
        }
