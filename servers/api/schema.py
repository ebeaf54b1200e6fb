"""Response shapes of /api/v1/servers, /agents and /admin/servers, for the OpenAPI schema.

Documentation only: the views build these bodies themselves (see servers.api.views, agents,
admin and servers.services). Each serializer names the fields a view really returns; a test
(tests/test_api_schema.py) checks the schema against live responses.
"""

from typing import Any

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from mcpcontrol.api.schema import PaginationSerializer
from servers.api.serializers import AgentSerializer, McpServerListSerializer

# List actions are documented as arrays unless the serializer says it is one object.
list_body = extend_schema_serializer(many=False)


class ServerSummarySerializer(serializers.Serializer[Any]):
    id = serializers.CharField()
    server_name = serializers.CharField()
    path = serializers.CharField()


class ServerCreatedSerializer(ServerSummarySerializer):
    scope = serializers.CharField()
    status = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    version = serializers.IntegerField()


@extend_schema_serializer(many=False, component_name="ServerList")
class ServerListResponseSerializer(serializers.Serializer[Any]):
    servers = McpServerListSerializer(many=True)
    pagination = PaginationSerializer()


class ServerToggledSerializer(ServerSummarySerializer):
    status = serializers.CharField()
    updated_at = serializers.DateTimeField()
    enabled = serializers.BooleanField()


class ServerToolsSerializer(ServerSummarySerializer):
    num_tools = serializers.IntegerField()
    tools = serializers.ListField(
        child=serializers.JSONField(),
        help_text="The tools the last check listed: names or MCP tool objects, as stored.",
    )
    cached = serializers.BooleanField(help_text="Always true: read from the registry.")


class ServerRefreshedSerializer(ServerSummarySerializer):
    status = serializers.CharField()
    num_tools = serializers.IntegerField()
    last_checked = serializers.DateTimeField(allow_null=True)
    response_time_ms = serializers.IntegerField(allow_null=True)
    outcome = serializers.CharField(
        help_text="healthy, unreachable, timeout, auth_required, protocol_error or disabled."
    )


# --- /admin/servers -------------------------------------------------------------------


@list_body
class AdminServerListSerializer(serializers.Serializer[Any]):
    servers = McpServerListSerializer(many=True)
    total = serializers.IntegerField()
    page = serializers.IntegerField()
    per_page = serializers.IntegerField()
    total_pages = serializers.IntegerField()


def _counts(what: str) -> serializers.DictField:
    return serializers.DictField(child=serializers.IntegerField(), help_text=f"Count per {what}.")


class AdminStatsSerializer(serializers.Serializer[Any]):
    """servers.services.server_stats + tokens.services.token_stats + active_users."""

    total_servers = serializers.IntegerField()
    servers_by_scope = _counts("scope")
    servers_by_status = _counts("status")
    servers_by_transport = _counts("transport type")
    total_tools = serializers.IntegerField()
    total_tokens = serializers.IntegerField()
    tokens_by_type = _counts("token type")
    active_tokens = serializers.IntegerField()
    expired_tokens = serializers.IntegerField()
    active_users = serializers.IntegerField()


class ServiceHealthSerializer(serializers.Serializer[Any]):
    id = serializers.CharField()
    path = serializers.CharField()
    server_name = serializers.CharField()
    status = serializers.CharField(help_text='The server\'s status, or "disabled".')
    last_checked = serializers.DateTimeField(allow_null=True)
    response_time_ms = serializers.IntegerField(allow_null=True)
    last_connected = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField(allow_null=True)


class HealthSummarySerializer(serializers.Serializer[Any]):
    total = serializers.IntegerField()
    healthy = serializers.IntegerField()
    unhealthy = serializers.IntegerField()
    disabled = serializers.IntegerField()


class AdminHealthSerializer(serializers.Serializer[Any]):
    services = ServiceHealthSerializer(many=True)
    summary = HealthSummarySerializer()


# --- /agents --------------------------------------------------------------------------


@list_body
class AgentListSerializer(serializers.Serializer[Any]):
    agents = AgentSerializer(many=True)
    pagination = PaginationSerializer()


class AgentConnectionSerializer(serializers.Serializer[Any]):
    """An agent's stored credential for a server: whether it exists, never its value."""

    agent_id = serializers.CharField()
    server_id = serializers.CharField()
    has_access_token = serializers.BooleanField()
    has_refresh_token = serializers.BooleanField()
    expires_at = serializers.DateTimeField(allow_null=True)
    updated_at = serializers.DateTimeField()


class McpServerEntrySerializer(serializers.Serializer[Any]):
    """One mcpServers entry: url and headers for http/sse/ws, command/args/env for stdio."""

    type = serializers.CharField(help_text="http, sse, ws or stdio.")
    url = serializers.CharField(required=False, help_text="http, sse and ws only.")
    headers = serializers.DictField(
        child=serializers.CharField(),
        required=False,
        help_text="http, sse and ws only: the credential headers, values revealed.",
    )
    command = serializers.CharField(required=False, help_text="stdio only.")
    args = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="stdio only."
    )
    env = serializers.DictField(
        child=serializers.CharField(), required=False, help_text="stdio only, values revealed."
    )


class MissingCredentialSerializer(serializers.Serializer[Any]):
    server_id = serializers.CharField()
    server_key = serializers.CharField()
    server_name = serializers.CharField()
    reason = serializers.CharField()


class McpConfigSerializer(serializers.Serializer[Any]):
    mcpServers = serializers.DictField(
        child=McpServerEntrySerializer(),
        help_text="Entries keyed by server key (suffixed _<id> when two keys collide).",
    )
    missing_credentials = MissingCredentialSerializer(
        many=True, help_text="Enabled servers left out for want of a usable credential."
    )


class AgentToolSerializer(serializers.Serializer[Any]):
    server_id = serializers.CharField()
    server_key = serializers.CharField()
    alias = serializers.CharField()
    tool = serializers.CharField()
    mcp_name = serializers.CharField(help_text="mcp__<server_key>__<tool>")
    alias_name = serializers.CharField(help_text="<alias>_<tool>")


class ToolCollisionSerializer(serializers.Serializer[Any]):
    name = serializers.CharField()
    server_ids = serializers.ListField(child=serializers.CharField())


class AgentToolsSerializer(serializers.Serializer[Any]):
    agent_id = serializers.CharField()
    tools = AgentToolSerializer(many=True)
    collisions = ToolCollisionSerializer(
        many=True, help_text="Names two or more tools share; every such tool is kept."
    )
