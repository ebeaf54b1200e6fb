"""Shapes of /api/v1/agents/{id}/keys, /api/v1/agents/{id}/gateway-policy and
/api/v1/gateway/group-policies."""

from typing import Any

from django.contrib.auth.models import Group
from django.utils import timezone
from rest_framework import serializers

from gateway.models import KEY_PREFIX, AgentKey, AgentPolicy, GroupPolicy
from mcpcontrol.lib.ids import is_id


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


def _patterns() -> "serializers.ListField":
    """A policy's allow or deny list: glob patterns (gateway.services.policy checks them)."""
    return serializers.ListField(
        child=serializers.CharField(max_length=300), max_length=100, required=False
    )


class AgentPolicySerializer(serializers.ModelSerializer[AgentPolicy]):
    agent_id = serializers.SerializerMethodField()
    allow = _patterns()
    deny = _patterns()

    class Meta:
        model = AgentPolicy
        fields = ("agent_id", "naming", "allow", "deny", "rate_limit_per_minute", "updated_at")
        read_only_fields = ("updated_at",)

    def get_agent_id(self, policy: AgentPolicy) -> str:
        return str(policy.agent_id)


class GroupPolicySerializer(serializers.ModelSerializer[GroupPolicy]):
    """A group's gateway policy; `group_id` is given at creation and fixed afterwards."""

    id = serializers.SerializerMethodField()
    group_id = serializers.CharField(help_text="The auth Group's id (at creation only).")
    group_name = serializers.CharField(source="group.name", read_only=True)
    allow = _patterns()
    deny = _patterns()

    class Meta:
        model = GroupPolicy
        fields = ("id", "group_id", "group_name", "allow", "deny", "updated_at")
        read_only_fields = ("updated_at",)

    def get_id(self, policy: GroupPolicy) -> str:
        return str(policy.pk)

    def validate_group_id(self, value: str) -> Group:
        group = Group.objects.filter(pk=value).first() if is_id(str(value)) else None
        if group is None:
            raise serializers.ValidationError("no such group")
        return group

    def to_representation(self, policy: GroupPolicy) -> dict[str, Any]:
        data = super().to_representation(policy)
        data["group_id"] = str(policy.group_id)
        return data
