"""Response shapes of /api/v1/servers, /agents and /admin/servers, for the OpenAPI schema.

Documentation only: servers.document renders the server bodies and the views build the
rest. Each serializer names the fields a view really returns; a test
(tests/test_api_schema.py) checks the schema against live responses.
"""

from typing import Any

from rest_framework import serializers

from servers.models import CheckResult, McpServer


def _id(**kwargs: Any) -> serializers.CharField:
    return serializers.CharField(help_text="An id, as a string (seed 004).", **kwargs)


def _text(**kwargs: Any) -> serializers.CharField:
    return serializers.CharField(allow_null=True, **kwargs)


def _json(help_text: str = "", **kwargs: Any) -> serializers.JSONField:
    return serializers.JSONField(help_text=help_text, **kwargs)


class ServerListItemSerializer(serializers.Serializer[Any]):
    """Seed 004's list item, plus status and enabled."""

    id = _id()
    server_name = serializers.CharField()
    path = serializers.CharField()
    description = serializers.CharField()
    proxy_pass_url = _text(help_text="The upstream URL (remote transports).")
    supported_transports = serializers.ListField(child=serializers.CharField())
    auth_type = serializers.CharField(help_text="none, api_key, bearer or oauth.")
    tags = serializers.ListField(child=serializers.CharField())
    num_tools = serializers.IntegerField()
    num_stars = serializers.IntegerField()
    is_python = serializers.BooleanField()
    license = _text()
    tool_list = serializers.ListField(child=_json(), help_text="MCP tool objects, as stored.")
    scope = serializers.CharField()
    user_id = _id(allow_null=True)
    status = serializers.CharField(help_text="active, inactive (disabled) or error.")
    state = serializers.ChoiceField(
        choices=McpServer.State.values,
        help_text="The one state word of the console (docs/api.md, Check history and state).",
    )
    enabled = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class AdminServerListItemSerializer(ServerListItemSerializer):
    """The same item; its own name, since the admin list's envelope differs (flat)."""


class TransportSerializer(serializers.Serializer[Any]):
    """Seed 004's transport object; env and header values always read "[redacted]"."""

    type = serializers.CharField()
    url = serializers.CharField(required=False)
    headers = serializers.DictField(child=serializers.CharField(), required=False)
    command = serializers.CharField(required=False)
    args = serializers.ListField(child=serializers.CharField(), required=False)
    env = serializers.DictField(child=serializers.CharField(), required=False)
    cwd = serializers.CharField(required=False)
    stderr = serializers.CharField(required=False)


class CredentialSerializer(serializers.Serializer[Any]):
    kind = _text(help_text="api_key, bearer or oauth; null when none is stored.")
    stored = serializers.BooleanField()
    expires_at = serializers.DateTimeField(allow_null=True)
    needs_reauth = serializers.BooleanField()
    reason = _text()


class ServerDetailSerializer(ServerListItemSerializer):
    """The whole server document (seed 004's detail, then seeds 000/003 and ours)."""

    auth_provider = _text()
    organization_id = _id(allow_null=True)
    schema_version = serializers.CharField(required=False)
    startup = serializers.BooleanField()
    icon_path = _text()
    timeout = serializers.IntegerField(help_text="Milliseconds.")
    init_timeout = serializers.IntegerField(help_text="Milliseconds.")
    chat_menu = serializers.BooleanField()
    server_instructions = _text()
    transport = TransportSerializer()
    requires_oauth = serializers.BooleanField()
    oauth = _json("OAuth settings without the client secret (has_client_secret).", allow_null=True)
    oauth_headers = _json(allow_null=True)
    oauth_metadata = _json("What discovery learned.", allow_null=True)
    custom_user_vars = _json(allow_null=True)
    last_connected = serializers.DateTimeField(allow_null=True)
    last_error = serializers.DateTimeField(allow_null=True)
    error_message = _text()
    version = serializers.IntegerField()
    created_by = _id(allow_null=True)
    alias = _text()
    alias_effective = serializers.CharField(help_text="The alias, or the sanitized name.")
    server_key = serializers.CharField(help_text="Seed 003's key: mcp__<key>__<tool>.")
    credential_mode = serializers.CharField()
    share_credential = serializers.BooleanField(
        help_text="Other users' agents may present this server's shared credential."
    )
    auth_header_name = serializers.CharField()
    auth_prefix = serializers.CharField()
    group_id = _id(allow_null=True)
    probe_agent_id = _id(allow_null=True)
    mcp_options = _json()
    capabilities = _json()
    tool_functions = _json("Seed 004's tool_functions, derived from the tool list.")
    init_duration = serializers.IntegerField(allow_null=True)
    last_checked = serializers.DateTimeField(allow_null=True)
    response_time_ms = serializers.IntegerField(allow_null=True)
    consecutive_failures = serializers.IntegerField()
    protocol_version = _text()
    tools_last_synced_at = serializers.DateTimeField(allow_null=True)
    connection_state = serializers.CharField(help_text="connected, disconnected or error.")
    state_message = serializers.CharField(
        allow_null=True, help_text="The latest failure in plain words; null when it passed."
    )
    is_recently_active = serializers.BooleanField(help_text="Connected within 5 minutes.")
    health = _json("The latest check's outcome (runtime state, never stored).")
    has_auth_token = serializers.BooleanField()
    credential = CredentialSerializer()
    credentials_error = serializers.CharField(required=False)


class ServerToggledSerializer(serializers.Serializer[Any]):
    id = _id()
    server_name = serializers.CharField()
    path = serializers.CharField()
    enabled = serializers.BooleanField()
    status = serializers.CharField()
    updated_at = serializers.DateTimeField()


class ServerToolsSerializer(serializers.Serializer[Any]):
    id = _id()
    server_name = serializers.CharField()
    path = serializers.CharField()
    tools = serializers.ListField(child=_json(), help_text="The tools the last check listed.")
    num_tools = serializers.IntegerField()
    cached = serializers.BooleanField(help_text="True: read from the registry, no live call.")
    tools_last_synced_at = serializers.DateTimeField(allow_null=True)


class CheckHistoryItemSerializer(serializers.Serializer[Any]):
    checked_at = serializers.DateTimeField()
    outcome = serializers.ChoiceField(choices=CheckResult.Outcome.choices)
    duration_ms = serializers.IntegerField(allow_null=True)
    tool_count = serializers.IntegerField(allow_null=True)
    error_class = serializers.CharField(help_text="A short cause (connection_refused, dns, "
                                        "http_401, ...); empty for a healthy check.")  # fmt: skip


class _PageCountsSerializer(serializers.Serializer[Any]):
    total = serializers.IntegerField()
    page = serializers.IntegerField()
    per_page = serializers.IntegerField()
    total_pages = serializers.IntegerField()


class CheckHistoryPageSerializer(serializers.Serializer[Any]):
    checks = CheckHistoryItemSerializer(many=True)
    pagination = _PageCountsSerializer()


class ServerRefreshedSerializer(serializers.Serializer[Any]):
    id = _id()
    server_name = serializers.CharField()
    path = serializers.CharField()
    status = serializers.CharField(
        help_text="healthy, unhealthy, auth_required, disabled, or pending (202)."
    )
    outcome = serializers.CharField(
        help_text="healthy, unreachable, timeout, auth_required, protocol_error, disabled, "
        "or pending (202)."
    )
    message = serializers.CharField()
    last_checked = serializers.DateTimeField(allow_null=True)
    response_time_ms = serializers.IntegerField(allow_null=True)
    num_tools = serializers.IntegerField()
    task_id = serializers.CharField()


# --- /admin/servers -------------------------------------------------------------------


def _counts(what: str) -> serializers.DictField:
    return serializers.DictField(child=serializers.IntegerField(), help_text=f"Count per {what}.")


class AdminStatsSerializer(serializers.Serializer[Any]):
    """Server counts (servers.services.server_stats), token counts, active users."""

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
    id = _id()
    path = serializers.CharField()
    server_name = serializers.CharField()
    status = serializers.CharField(help_text="healthy, unhealthy or disabled.")
    last_checked = serializers.DateTimeField(allow_null=True)
    response_time_ms = serializers.IntegerField(allow_null=True)
    last_connected = serializers.DateTimeField(allow_null=True)
    error = _text()
    last_error = serializers.DateTimeField(allow_null=True)


class HealthSummarySerializer(serializers.Serializer[Any]):
    total = serializers.IntegerField()
    healthy = serializers.IntegerField()
    unhealthy = serializers.IntegerField()
    disabled = serializers.IntegerField()


class AdminHealthSerializer(serializers.Serializer[Any]):
    services = ServiceHealthSerializer(many=True)
    summary = HealthSummarySerializer()


# --- /agents --------------------------------------------------------------------------


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
