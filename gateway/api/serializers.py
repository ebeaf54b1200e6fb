"""Shapes of /api/v1/agents/{id}/keys and /api/v1/agents/{id}/gateway-policy."""

from typing import Any

from django.utils import timezone
from rest_framework import serializers

from gateway.models import KEY_PREFIX, AgentKey, AgentPolicy


class AgentKeySerializer(serializers.ModelSerializer[AgentKey]):
    """A key as listed: its lookup prefix, never its value or digest."""

    id = serializers.SerializerMethodField()
    agent_id = serializers.SerializerMethodField()
    prefix = serializers.SerializerMethodField()
    state = serializers.CharField(read_only=True)

    class Meta:
        model = AgentKey
        fields: tuple[str, ...] = ("id", "agent_id", "name", "prefix", "state", "expires_at", "last_used_at",
                  "revoked_at", "created_at")  # fmt: skip
        read_only_fields: tuple[str, ...] = fields

    def get_id(self, key: AgentKey) -> str:
        return str(key.pk)

    def get_agent_id(self, key: AgentKey) -> str:
        return str(key.agent_id)

    def get_prefix(self, key: AgentKey) -> str:
        return f"{KEY_PREFIX}{key.prefix}"


class AgentKeyCreatedSerializer(AgentKeySerializer):
    """The create response: the only time the raw key is ever shown."""

    key = serializers.CharField(read_only=True, help_text="Shown once; store it now.")

    class Meta(AgentKeySerializer.Meta):
        fields = (*AgentKeySerializer.Meta.fields, "key")
        read_only_fields = fields


class AgentKeyCreateSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=100)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)

    def validate_expires_at(self, value: Any) -> Any:
        if value is not None and value <= timezone.now():
            raise serializers.ValidationError("expires_at must be in the future.")
        return value


class AgentPolicySerializer(serializers.ModelSerializer[AgentPolicy]):
    agent_id = serializers.SerializerMethodField()
    allow = serializers.ListField(
        child=serializers.CharField(max_length=300), max_length=100, required=False
    )
    deny = serializers.ListField(
        child=serializers.CharField(max_length=300), max_length=100, required=False
    )

    class Meta:
        model = AgentPolicy
        fields = ("agent_id", "naming", "allow", "deny", "updated_at")
        read_only_fields = ("updated_at",)

    def get_agent_id(self, policy: AgentPolicy) -> str:
        return str(policy.agent_id)
