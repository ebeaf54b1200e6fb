"""Request and response shapes of /api/v1/servers and /api/v1/agents.

Request serializers only check types and translate the API's field names (and the nested
connection_details/oauth forms) to model field names; the services validate the row.
Secrets are write-only: responses say whether one is stored, never what it is. env and
headers values are secrets too: responses show their names, each value "[redacted]", and a
"[redacted]" sent back on update keeps the stored value (servers.services resolves it).
"""

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from rest_framework import serializers

from audit.services import REDACTED
from mcpcontrol.api.validators import reject_nul
from servers.models import Agent, McpServer

MAX_INT = 2**31 - 1
MAX_ID = 2**63 - 1

TRANSPORT_ALIASES = {
    "streamable-http": McpServer.Transport.STREAMABLE_HTTP,
    "streamable_http": McpServer.Transport.STREAMABLE_HTTP,
    "http": McpServer.Transport.STREAMABLE_HTTP,
    "sse": McpServer.Transport.SSE,
    "stdio": McpServer.Transport.STDIO,
    "websocket": McpServer.Transport.WEBSOCKET,
    "ws": McpServer.Transport.WEBSOCKET,
}
TRANSPORT_CHOICES = list(TRANSPORT_ALIASES)
NESTED_AUTH_TYPES = {"none": "none", "apiKey": "api_key", "bearerToken": "bearer"}

# API name -> model field, for fields that map one to one.
PLAIN_FIELDS = {
    "server_name": "name", "name": "name", "description": "description", "tags": "tags",
    "path": "path", "alias": "alias", "icon_path": "icon_path", "url": "url",
    "proxy_pass_url": "url", "command": "command", "args": "args", "env": "env", "cwd": "cwd",
    "headers": "headers", "stderr": "stderr", "scope": "scope", "timeout_ms": "timeout_ms",
    "init_timeout_ms": "init_timeout_ms", "startup": "startup", "chat_menu": "chat_menu",
    "server_instructions": "server_instructions", "custom_user_vars": "custom_user_vars",
    "mcp_options": "mcp_options", "enabled": "is_enabled", "auth_type": "auth_type",
    "auth_token": "auth_secret", "auth_header_name": "header_name", "auth_prefix": "prefix",
    "credential_mode": "credential_mode",
}  # fmt: skip
OAUTH_FIELDS = {
    "authorization_url": "oauth_authorization_url", "token_url": "oauth_token_url",
    "client_id": "oauth_client_id", "client_secret": "oauth_client_secret",
    "scope": "oauth_scopes", "registration_url": "oauth_registration_url",
    "revocation_url": "oauth_revocation_url", "redirect_uri": "oauth_redirect_uri",
    "grant_type": "oauth_grant_type", "issuer": "oauth_issuer",
}  # fmt: skip


def _text(max_length: int = 2000, **kwargs: Any) -> serializers.CharField:
    return serializers.CharField(max_length=max_length, required=False, allow_blank=True, **kwargs)


def _secret() -> serializers.CharField:
    return serializers.CharField(
        max_length=10000, required=False, allow_blank=True, allow_null=True, write_only=True,
        trim_whitespace=False, style={"input_type": "password"},
    )  # fmt: skip


class OAuthSettingsSerializer(serializers.Serializer[Any]):
    authorization_url = _text()
    token_url = _text()
    client_id = _secret()
    client_secret = _secret()
    scope = _text(1000)
    registration_url = _text()
    revocation_url = _text()
    redirect_uri = _text()
    grant_type = serializers.ChoiceField(choices=McpServer.OAuthGrant.choices, required=False)
    issuer = _text()


class AuthenticationSerializer(serializers.Serializer[Any]):
    type = serializers.ChoiceField(choices=list(NESTED_AUTH_TYPES))
    key = _secret()
    token = _secret()
    headerName = _text(100)
    prefix = _text(50, trim_whitespace=False)  # "Key " keeps its space


class ConnectionDetailsSerializer(serializers.Serializer[Any]):
    authentication = AuthenticationSerializer(required=False)


class McpServerWriteSerializer(serializers.Serializer[Any]):
    """Fields a client may send on create (POST) and update (PATCH)."""

    server_name = _text(200)
    name = _text(200)
    description = _text(10000)
    tags = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, max_length=100
    )
    path = _text(200)
    alias = _text(64)
    icon_path = _text(500)
    url = _text()
    proxy_pass_url = _text()
    transport = serializers.ChoiceField(choices=TRANSPORT_CHOICES, required=False)
    transport_type = serializers.ChoiceField(choices=TRANSPORT_CHOICES, required=False)
    command = _text(500)
    args = serializers.ListField(
        child=serializers.CharField(max_length=2000, allow_blank=True),
        required=False,
        max_length=200,
    )
    env = serializers.DictField(
        child=serializers.CharField(max_length=10000, allow_blank=True), required=False
    )
    cwd = _text(500)
    headers = serializers.DictField(
        child=serializers.CharField(max_length=10000, allow_blank=True), required=False
    )
    stderr = serializers.ChoiceField(choices=McpServer.Stderr.choices, required=False)
    scope = serializers.ChoiceField(choices=McpServer.Scope.choices, required=False)
    group_id = serializers.IntegerField(
        min_value=1, max_value=MAX_ID, required=False, allow_null=True
    )
    user_id = serializers.IntegerField(
        min_value=1, max_value=MAX_ID, required=False, allow_null=True
    )
    timeout_ms = serializers.IntegerField(min_value=1, max_value=MAX_INT, required=False)
    init_timeout_ms = serializers.IntegerField(min_value=1, max_value=MAX_INT, required=False)
    startup = serializers.BooleanField(required=False)
    chat_menu = serializers.BooleanField(required=False)
    server_instructions = _text(10000)
    custom_user_vars = serializers.DictField(required=False, validators=[reject_nul])
    mcp_options = serializers.DictField(required=False, validators=[reject_nul])
    enabled = serializers.BooleanField(required=False)
    auth_type = serializers.ChoiceField(choices=McpServer.AuthType.choices, required=False)
    auth_token = _secret()
    auth_header_name = _text(100)
    auth_prefix = _text(50, trim_whitespace=False)
    credential_mode = serializers.ChoiceField(
        choices=McpServer.CredentialMode.choices, required=False
    )
    oauth = OAuthSettingsSerializer(required=False)
    connection_details = ConnectionDetailsSerializer(required=False)
    version = serializers.IntegerField(min_value=1, max_value=MAX_INT, required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Translate to {model_field: value}; `version` is kept apart under "_version"."""
        changes: dict[str, Any] = {}
        for api_name, field in PLAIN_FIELDS.items():
            if api_name in attrs:
                changes[field] = attrs[api_name]
        for api_name in ("transport", "transport_type"):
            if api_name in attrs:
                changes["transport_type"] = TRANSPORT_ALIASES[attrs[api_name]]
        for api_name, field in OAUTH_FIELDS.items():
            if api_name in attrs.get("oauth", {}):
                changes[field] = attrs["oauth"][api_name]
        changes.update(_nested_auth(attrs.get("connection_details", {}).get("authentication")))
        changes.update(_relations(attrs))
        for field in ("name", "url", "command", "path"):
            if changes.get(field) is None and field in changes:
                changes[field] = ""
        if "version" in attrs:
            changes["_version"] = attrs["version"]
        return changes


def _nested_auth(auth: dict[str, Any] | None) -> dict[str, Any]:
    if not auth:
        return {}
    kind = NESTED_AUTH_TYPES[auth["type"]]
    changes: dict[str, Any] = {"auth_type": kind}
    if kind == "api_key":
        if "key" in auth:
            changes["auth_secret"] = auth["key"]
        if "headerName" in auth:
            changes["header_name"] = auth["headerName"]
        if "prefix" in auth:
            changes["prefix"] = auth["prefix"]
    elif kind == "bearer" and "token" in auth:
        changes["auth_secret"] = auth["token"]
    return changes


def _relations(attrs: dict[str, Any]) -> dict[str, Any]:
    """group_id and user_id to rows; an unknown id is a field error."""
    changes: dict[str, Any] = {}
    if "group_id" in attrs:
        gid = attrs["group_id"]
        changes["group"] = None if gid is None else Group.objects.filter(pk=gid).first()
        if gid is not None and changes["group"] is None:
            raise serializers.ValidationError({"group_id": ["No such group."]})
    if "user_id" in attrs:
        uid = attrs["user_id"]
        changes["owner"] = None if uid is None else get_user_model().objects.filter(pk=uid).first()
        if uid is not None and changes["owner"] is None:
            raise serializers.ValidationError({"user_id": ["No such user."]})
    return changes


class McpServerListSerializer(serializers.ModelSerializer[McpServer]):
    id = serializers.SerializerMethodField()
    server_name = serializers.CharField(source="name")
    proxy_pass_url = serializers.CharField(source="url")
    supported_transports = serializers.SerializerMethodField()
    num_tools = serializers.IntegerField()
    tool_list = serializers.JSONField(source="tools")
    user_id = serializers.IntegerField(source="owner_id", allow_null=True)
    enabled = serializers.BooleanField(source="is_enabled")

    class Meta:
        model = McpServer
        fields: tuple[str, ...] = (
            "id", "server_name", "path", "description", "proxy_pass_url", "url",
            "supported_transports", "auth_type", "tags", "num_tools", "tool_list", "scope",
            "user_id", "status", "enabled", "created_at", "updated_at",
        )  # fmt: skip

    def get_id(self, server: McpServer) -> str:
        return str(server.pk)

    def get_supported_transports(self, server: McpServer) -> list[str]:
        return [server.transport_type]


class RedactedDictField(serializers.DictField):
    """A map whose values are secrets: its names are shown, never its values."""

    def to_representation(self, value: Any) -> dict[str, str]:
        return {str(name): REDACTED for name in value or {}}


class McpServerSerializer(McpServerListSerializer):
    """The full detail of one server: no secret values, only has_* booleans."""

    transport = serializers.CharField(source="transport_type")
    group_id = serializers.IntegerField(allow_null=True)
    auth_header_name = serializers.CharField(source="header_name")
    auth_prefix = serializers.CharField(source="prefix")
    env = RedactedDictField(child=serializers.CharField(), read_only=True)
    headers = RedactedDictField(child=serializers.CharField(), read_only=True)
    has_auth_token = serializers.SerializerMethodField()
    has_oauth_client_id = serializers.SerializerMethodField()
    has_oauth_client_secret = serializers.SerializerMethodField()
    oauth = serializers.SerializerMethodField()
    connection_state = serializers.SerializerMethodField()
    is_recently_active = serializers.SerializerMethodField()

    class Meta(McpServerListSerializer.Meta):
        fields = (
            *McpServerListSerializer.Meta.fields,
            "alias", "transport", "transport_type", "command", "args", "env", "cwd", "headers",
            "stderr", "group_id", "timeout_ms", "init_timeout_ms", "startup", "chat_menu",
            "server_instructions", "custom_user_vars", "mcp_options", "icon_path",
            "auth_header_name", "auth_prefix", "credential_mode", "has_auth_token",
            "has_oauth_client_id", "has_oauth_client_secret", "oauth",
            "capabilities", "protocol_version", "tools_last_synced_at", "init_duration_ms",
            "last_connected_at", "last_checked_at", "last_error_at", "error_message",
            "response_time_ms", "consecutive_failures", "version", "connection_state",
            "is_recently_active",
        )  # fmt: skip

    def get_has_auth_token(self, server: McpServer) -> bool:
        return server.has_secret("auth_secret")

    def get_has_oauth_client_id(self, server: McpServer) -> bool:
        return server.has_secret("oauth_client_id")

    def get_has_oauth_client_secret(self, server: McpServer) -> bool:
        return server.has_secret("oauth_client_secret")

    def get_oauth(self, server: McpServer) -> dict[str, Any]:
        settings = {api: getattr(server, field) for api, field in OAUTH_FIELDS.items()
                    if field not in McpServer.SECRET_FIELDS}  # fmt: skip
        return {
            **settings,
            "expires_at": server.oauth_expires_at,
            "needs_reauth": server.oauth_needs_reauth,
            "has_access_token": server.has_secret("oauth_access_token"),
            "has_refresh_token": server.has_secret("oauth_refresh_token"),
        }

    def get_connection_state(self, server: McpServer) -> dict[str, Any]:
        from servers.services import server_connection_state

        return server_connection_state(server.pk)

    def get_is_recently_active(self, server: McpServer) -> bool:
        from servers.services import server_is_recently_active

        return server_is_recently_active(server)


class AgentSerializer(serializers.ModelSerializer[Agent]):
    id = serializers.SerializerMethodField()
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(max_length=10000, required=False, allow_blank=True)
    user_id = serializers.IntegerField(
        source="owner_id", required=False, min_value=1, max_value=MAX_ID
    )

    class Meta:
        model = Agent
        fields = ("id", "name", "description", "user_id", "created_at", "updated_at")
        read_only_fields = ("created_at", "updated_at")

    def get_id(self, agent: Agent) -> str:
        return str(agent.pk)


class AgentConnectionWriteSerializer(serializers.Serializer[Any]):
    """An agent's credential for a server: write-only, never returned."""

    access_token = _secret()
    api_key = _secret()
    refresh_token = _secret()
    expires_at = serializers.DateTimeField(required=False, allow_null=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        value = attrs.get("access_token") or attrs.get("api_key")
        if not value:
            raise serializers.ValidationError({"access_token": ["Send access_token or api_key."]})
        return {
            "access_token": value,
            "refresh_token": attrs.get("refresh_token") or None,
            "expires_at": attrs.get("expires_at"),
        }
