"""The input shapes of a server document: every key the three seed designs send, and ours.

Type checks only (DRF serializers, which also describe the body in the OpenAPI schema);
what the keys mean is servers.document.parse's job. Seed 004 sends `transport` as an object,
seed 000 `server_type` + `connection_details`, seed 003 flat `auth_*` and `custom_headers`.
"""

import json
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from servers.models import MAX_TIMEOUT_MS, McpServer

MAX_ID = 2**63 - 1
MAX_INT = 2**31 - 1

TRANSPORT_ALIASES = {
    "stdio": McpServer.Transport.STDIO,
    "sse": McpServer.Transport.SSE,
    "streamable-http": McpServer.Transport.STREAMABLE_HTTP,
    "streamable_http": McpServer.Transport.STREAMABLE_HTTP,
    "streamablehttp": McpServer.Transport.STREAMABLE_HTTP,
    "http": McpServer.Transport.STREAMABLE_HTTP,
    "websocket": McpServer.Transport.WEBSOCKET,
    "ws": McpServer.Transport.WEBSOCKET,
}
# Seed 003 calls api_key "api_key_header"; seed 000 writes apiKey and bearerToken.
AUTH_ALIASES = {
    "none": McpServer.AuthType.NONE,
    "api_key": McpServer.AuthType.API_KEY,
    "api_key_header": McpServer.AuthType.API_KEY,
    "apiKey": McpServer.AuthType.API_KEY,
    "bearer": McpServer.AuthType.BEARER,
    "bearerToken": McpServer.AuthType.BEARER,
    "oauth": McpServer.AuthType.OAUTH,
}
# The names a document may give a transport or an auth type (enums of the OpenAPI schema).
TRANSPORT_NAMES = list(TRANSPORT_ALIASES)
AUTH_NAMES = list(AUTH_ALIASES)
# Seed 000's status values, mapped to ours: whether the server is enabled (None: not ours
# to set, the health engine decides "error").
STATUS_ENABLED = {
    "active": True, "running": True, "inactive": False, "stopped": False, "disabled": False,
    "error": None,
}  # fmt: skip

# What the detail shows for a catalog key never set (seed 004's MCPServer defaults).
CATALOG_DEFAULTS: dict[str, Any] = {
    "num_stars": 0, "is_python": False, "license": None, "auth_provider": None,
    "organization_id": None,
}  # fmt: skip


def text(max_length: int = 2000, **kwargs: Any) -> serializers.CharField:
    kwargs.setdefault("allow_blank", True)
    return serializers.CharField(max_length=max_length, required=False, **kwargs)


def secret() -> serializers.CharField:
    return serializers.CharField(
        max_length=10000, required=False, allow_blank=True, allow_null=True, write_only=True,
        trim_whitespace=False, style={"input_type": "password"},
    )  # fmt: skip


def string_map(**kwargs: Any) -> serializers.DictField:
    return serializers.DictField(
        child=serializers.CharField(max_length=10000, allow_blank=True, trim_whitespace=False),
        required=False,
        **kwargs,
    )


def string_list(max_length: int = 200, **kwargs: Any) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.CharField(max_length=2000, allow_blank=True, trim_whitespace=False),
        required=False,
        max_length=max_length,
        **kwargs,
    )


@extend_schema_field({"oneOf": [{"type": "object"}, {"type": "array"}, {"type": "string"}]})
class JSONTextOr(serializers.Field[Any, Any, Any, Any]):
    """A JSON value, or the same value written as a JSON string (seed 000 stores tags and
    mcp_options as TEXT; seed 004 stores capabilities and tools as JSON strings)."""

    def __init__(self, expected: type, **kwargs: Any) -> None:
        self.expected = expected
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str):
            try:
                data = json.loads(data) if data.strip() else self.expected()
            except json.JSONDecodeError:
                self.fail_invalid("is a string but not JSON")
        if not isinstance(data, self.expected):
            self.fail_invalid(f"must be a JSON {self.expected.__name__} or its JSON text")
        return data

    def fail_invalid(self, why: str) -> None:
        raise serializers.ValidationError(why)

    def to_representation(self, value: Any) -> Any:
        return value


class NullableText(serializers.CharField):
    """A string where the seeds also write null or false for "none" (icon_path,
    server_instructions): both read as ""."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_blank", True)
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)

    def validate_empty_values(self, data: Any) -> tuple[bool, Any]:
        if data is None or data is False:
            return True, ""
        return super().validate_empty_values(data)


@extend_schema_field({"oneOf": [{"type": "string"}, {"type": "integer"}], "nullable": True})
class IdField(serializers.Field[Any, Any, Any, Any]):
    """An id as a string (seed 004: ObjectId strings) or a number; null allowed."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        if isinstance(data, bool) or not isinstance(data, int | str) or len(str(data)) > 64:
            raise serializers.ValidationError("must be an id (a string or a number)")
        return str(data)

    def to_representation(self, value: Any) -> Any:
        return value


class TransportShape(serializers.Serializer[Any]):
    """Seed 004's TransportConfig; `type` also takes seed 000's names."""

    type = serializers.ChoiceField(choices=TRANSPORT_NAMES, required=False)
    url = text(allow_null=True)
    command = text(500, allow_null=True)
    args = string_list(allow_null=True)
    env = string_map(allow_null=True)
    cwd = text(500, allow_null=True)
    stderr = serializers.ChoiceField(
        choices=McpServer.Stderr.choices, required=False, allow_null=True
    )
    headers = string_map(allow_null=True)


class OAuthShape(serializers.Serializer[Any]):
    """Seed 004's OAuthConfig, plus ours (issuer, registration_endpoint, grant_type,
    token_endpoint_auth_method, token_variable). client_secret is write-only."""

    authorization_url = text(allow_null=True)
    token_url = text(allow_null=True)
    client_id = text(500, allow_null=True)
    client_secret = secret()
    scope = text(1000, allow_null=True)
    redirect_uri = text(allow_null=True)
    token_exchange_method = serializers.ChoiceField(
        choices=["POST", "GET"], required=False, allow_null=True
    )
    grant_types_supported = string_list(20, allow_null=True)
    token_endpoint_auth_methods_supported = string_list(20, allow_null=True)
    response_types_supported = string_list(20, allow_null=True)
    code_challenge_methods_supported = string_list(20, allow_null=True)
    skip_code_challenge_check = serializers.BooleanField(required=False, allow_null=True)
    revocation_endpoint = text(allow_null=True)
    revocation_endpoint_auth_methods_supported = string_list(20, allow_null=True)
    issuer = text(allow_null=True)
    registration_endpoint = text(allow_null=True)
    grant_type = serializers.ChoiceField(
        choices=McpServer.OAuthGrant.choices, required=False, allow_null=True
    )
    token_endpoint_auth_method = text(100, allow_null=True)
    token_variable = text(100, allow_null=True)
    # Read-only, from our responses: accepted so a GET body can be sent back.
    has_client_secret = serializers.BooleanField(required=False, read_only=True)


# Our own former names of OAuth keys, still accepted.
OAUTH_KEY_ALIASES = {
    "registration_url": "registration_endpoint",
    "revocation_url": "revocation_endpoint",
}


class AuthenticationShape(serializers.Serializer[Any]):
    """Seed 000's connection_details.authentication."""

    type = serializers.ChoiceField(choices=AUTH_NAMES)
    key = secret()
    token = secret()
    headerName = text(100, allow_null=True)
    prefix = text(50, allow_null=True, trim_whitespace=False)  # "Key " keeps its space


class ConnectionDetailsShape(serializers.Serializer[Any]):
    """Seed 000's connection_details: where the server is, and how to authenticate."""

    url = text(allow_null=True)
    command = text(500, allow_null=True)
    args = string_list(allow_null=True)
    cwd = text(500, allow_null=True)
    env = string_map(allow_null=True)
    headers = string_map(allow_null=True)
    authentication = AuthenticationShape(required=False)


class VariableShape(serializers.Serializer[Any]):
    """Seed 004's CustomVariable."""

    title = text(200)
    description = text(2000, allow_null=True)
    required = serializers.BooleanField(required=False, allow_null=True)  # type: ignore[assignment]


def _timeout() -> serializers.IntegerField:
    return serializers.IntegerField(min_value=1, max_value=MAX_TIMEOUT_MS, required=False)


class ServerShape(serializers.Serializer[Any]):
    """Every key a server document may carry (request bodies, registry files)."""

    # identity (seed 004; seed 000 says `name`)
    server_name = text(200)
    name = text(200)
    description = NullableText(max_length=10000)
    path = text(200)
    alias = NullableText(max_length=64)
    icon_path = NullableText(max_length=500)
    tags = JSONTextOr(list)
    # transport: seed 004's object, seed 000's server_type + connection_details, or flat
    transport = serializers.JSONField(required=False)  # an object, or a type name (ours, v1)
    transport_type = serializers.ChoiceField(choices=TRANSPORT_NAMES, required=False)
    server_type = serializers.ChoiceField(choices=TRANSPORT_NAMES, required=False)
    connection_details = ConnectionDetailsShape(required=False)
    proxy_pass_url = text(allow_null=True)
    url = text(allow_null=True)
    command = text(500)
    args = string_list()
    env = string_map()
    cwd = text(500)
    stderr = serializers.ChoiceField(choices=McpServer.Stderr.choices, required=False)
    headers = string_map()
    custom_headers = string_map()  # seed 003
    # auth (seed 003's flat names, ours)
    auth_type = serializers.ChoiceField(choices=AUTH_NAMES, required=False)
    auth_token = secret()
    auth_header_name = text(100)
    auth_prefix = text(50, trim_whitespace=False)
    credential_mode = serializers.ChoiceField(
        choices=McpServer.CredentialMode.choices, required=False
    )
    share_credential = serializers.BooleanField(required=False)
    probe_agent_id = IdField()
    requires_oauth = serializers.BooleanField(required=False)
    oauth = serializers.JSONField(required=False, allow_null=True)  # OAuthShape, checked apart
    oauth_headers = string_map(allow_null=True)
    oauth_metadata = serializers.DictField(required=False, allow_null=True)
    # seed 003's flat OAuth settings
    oauth_authorization_url = text(allow_null=True)
    oauth_token_url = text(allow_null=True)
    oauth_client_id = text(500, allow_null=True)
    oauth_client_secret = secret()
    oauth_scopes = text(1000, allow_null=True)
    custom_user_vars = serializers.DictField(child=VariableShape(), required=False, allow_null=True)
    # access
    scope = serializers.ChoiceField(choices=McpServer.Scope.choices, required=False)
    user_id = IdField()
    group_id = IdField()
    owner = text(150, allow_null=True)  # registry files: the owner's username
    group = text(150, allow_null=True)  # registry files: the group's name
    # options
    enabled = serializers.BooleanField(required=False)
    is_enabled = serializers.BooleanField(required=False)  # seed 000
    status = serializers.ChoiceField(choices=list(STATUS_ENABLED), required=False)
    startup = serializers.BooleanField(required=False)
    chat_menu = serializers.BooleanField(required=False)
    server_instructions = NullableText(max_length=10000)
    timeout = _timeout()  # seed 004, milliseconds
    init_timeout = _timeout()
    timeout_ms = _timeout()
    init_timeout_ms = _timeout()
    mcp_options = JSONTextOr(dict)
    # catalog (seed 004), stored as sent
    num_stars = serializers.IntegerField(min_value=0, max_value=MAX_INT, required=False)
    is_python = serializers.BooleanField(required=False)
    license = text(200, allow_null=True)
    auth_provider = text(200, allow_null=True)
    organization_id = IdField()
    supported_transports = string_list(10)
    schema_version = text(20)
    # tools: declared before the first check, replaced by what the server itself lists
    num_tools = serializers.IntegerField(min_value=0, max_value=MAX_INT, required=False)
    tool_list = serializers.ListField(child=serializers.JSONField(), required=False)
    tools = JSONTextOr(list)  # seed 004 runtime data: a JSON string of tools
    discovered_tools = serializers.ListField(child=serializers.JSONField(), required=False)
    tool_functions = serializers.DictField(required=False, allow_null=True)
    capabilities = JSONTextOr(dict)
    version = serializers.IntegerField(min_value=1, max_value=MAX_INT, required=False)


# Keys our responses (and seed documents) carry that a client cannot set: accepted and
# ignored, so a GET body (or a stored seed 004 document) can be sent back as it is.
READ_ONLY_KEYS = frozenset(
    {
        "id", "_id", "created_at", "updated_at", "created_by", "last_connected", "last_error",
        "error_message", "last_checked", "response_time_ms", "connection_state",
        "is_recently_active", "has_auth_token", "credential", "health", "server_key",
        "consecutive_failures", "protocol_version", "tools_last_synced_at", "init_duration",
        "last_pinged_at", "alias_effective", "outcome", "credentials_error", "state",
        "state_message",
    }
)  # fmt: skip
