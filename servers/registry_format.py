"""The per-server JSON file format of MCP registries, and the common client-config shape.

Mapping only: these functions turn file data into McpServer field values and back, raising
FormatError (naming the field) on bad input. Writing rows is the services' job.

A registry file is named after its server (`github.json` → "github") and holds keys like
`transport{type,command,args,env,url,headers,stderr,cwd}`, `requires_oauth`,
`oauth{authorization_url,token_url,client_id,client_secret,scope,...}`, `startup`,
`icon_path`, `timeout`, `init_timeout`, `chat_menu`, `server_instructions`,
`custom_user_vars`, `scope`, `status`. Keys we do not model are kept under
`mcp_options["registry_extra"]` so an import never loses what the file said.
"""

from typing import Any

from servers.models import McpServer

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
CLIENT_CONFIG_TYPES = {
    McpServer.Transport.STDIO: "stdio",
    McpServer.Transport.SSE: "sse",
    McpServer.Transport.STREAMABLE_HTTP: "http",
    McpServer.Transport.WEBSOCKET: "ws",
}
# file key → (model field, expected type)
_PLAIN_KEYS: dict[str, tuple[str, type | tuple[type, ...]]] = {
    "description": ("description", str),
    "alias": ("alias", str),
    "path": ("path", str),
    "tags": ("tags", list),
    "icon_path": ("icon_path", str),
    "startup": ("startup", bool),
    "timeout": ("timeout_ms", int),
    "init_timeout": ("init_timeout_ms", int),
    "chat_menu": ("chat_menu", bool),
    "server_instructions": ("server_instructions", str),
    "custom_user_vars": ("custom_user_vars", dict),
    "scope": ("scope", str),
    "status": ("status", str),
    "enabled": ("is_enabled", bool),
    "credential_mode": ("credential_mode", str),
    "mcp_options": ("mcp_options", dict),
}
_TRANSPORT_KEYS: dict[str, tuple[str, type]] = {
    "url": ("url", str),
    "command": ("command", str),
    "args": ("args", list),
    "env": ("env", dict),
    "headers": ("headers", dict),
    "stderr": ("stderr", str),
    "cwd": ("cwd", str),
}
_OAUTH_KEYS: dict[str, str] = {
    "authorization_url": "oauth_authorization_url",
    "token_url": "oauth_token_url",
    "registration_url": "oauth_registration_url",
    "revocation_url": "oauth_revocation_url",
    "issuer": "oauth_issuer",
    "scope": "oauth_scopes",
    "redirect_uri": "oauth_redirect_uri",
    "token_exchange_method": "oauth_token_endpoint_auth_method",
    "grant_type": "oauth_grant_type",
    "code_challenge_methods_supported": "oauth_pkce_methods",
}
_OAUTH_SECRET_KEYS = {"client_id": "oauth_client_id", "client_secret": "oauth_client_secret"}
_AUTH_KEYS = {"type": "auth_type", "header_name": "header_name", "prefix": "prefix"}


class FormatError(ValueError):
    """Bad input in a file: `field` names the offending key path."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def _typed(data: dict[str, Any], key: str, expected: Any, where: str) -> Any:
    value = data[key]
    if expected is int and isinstance(value, bool):
        raise FormatError(f"{where}{key}", "must be an integer")
    if not isinstance(value, expected):
        names = (
            expected.__name__
            if isinstance(expected, type)
            else "/".join(t.__name__ for t in expected)
        )
        raise FormatError(f"{where}{key}", f"must be {names}, got {type(value).__name__}")
    return value


def _section(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise FormatError(key, "must be an object")
    return value


def fields_from_registry(name: str, data: Any) -> dict[str, Any]:
    """McpServer field values (secrets as plaintext, to be sealed) from a registry file."""
    if not isinstance(data, dict):
        raise FormatError("(file)", "must hold a JSON object")
    fields: dict[str, Any] = {"name": name}
    for key, (field, expected) in _PLAIN_KEYS.items():
        if key in data:
            fields[field] = _typed(data, key, expected, "")
    transport = _section(data, "transport")
    kind = str(transport.get("type", "stdio" if "command" in transport else "")).lower()
    if kind not in TRANSPORT_ALIASES:
        raise FormatError("transport.type", f"unknown transport {kind or '(missing)'!r}")
    fields["transport_type"] = TRANSPORT_ALIASES[kind]
    for key, (field, expected) in _TRANSPORT_KEYS.items():
        if key in transport:
            fields[field] = _typed(transport, key, expected, "transport.")
    fields.update(_auth_fields(data))
    extra = {k: v for k, v in data.items() if k not in _KNOWN_TOP_KEYS}
    if extra:
        fields["mcp_options"] = {**fields.get("mcp_options", {}), "registry_extra": extra}
    return fields


def _auth_fields(data: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    auth = _section(data, "auth")
    for key, field in _AUTH_KEYS.items():
        if key in auth:
            fields[field] = _typed(auth, key, str, "auth.")
    oauth = _section(data, "oauth")
    if data.get("requires_oauth") or oauth:
        if "requires_oauth" in data and not isinstance(data["requires_oauth"], bool):
            raise FormatError("requires_oauth", "must be true or false")
        if data.get("requires_oauth", True):
            fields["auth_type"] = McpServer.AuthType.OAUTH
    for key, field in _OAUTH_KEYS.items():
        if key in oauth:
            expected = list if field == "oauth_pkce_methods" else str
            fields[field] = _typed(oauth, key, expected, "oauth.")
    for key, field in _OAUTH_SECRET_KEYS.items():
        if oauth.get(key):
            fields[field] = _typed(oauth, key, str, "oauth.")
    extra_oauth = {
        k: v for k, v in oauth.items() if k not in _OAUTH_KEYS and k not in _OAUTH_SECRET_KEYS
    }
    if extra_oauth:
        fields["oauth_metadata"] = {"registry_extra": extra_oauth}
    return fields


_KNOWN_TOP_KEYS = {*_PLAIN_KEYS, "transport", "requires_oauth", "oauth", "auth", "name"}


def registry_from_server(server: McpServer) -> dict[str, Any]:
    """The registry file content of a server, secrets omitted (env and headers keep their
    names with "" values, which a seed reads as "keep the stored value")."""
    options = dict(server.mcp_options or {})
    extra = options.pop("registry_extra", {})
    data: dict[str, Any] = {}
    for key, (field, _expected) in _PLAIN_KEYS.items():
        data[key] = options if field == "mcp_options" else getattr(server, field)
    if not options:
        data.pop("mcp_options")
    transport: dict[str, Any] = {"type": server.transport_type}
    for key, (field, _expected) in _TRANSPORT_KEYS.items():
        value = getattr(server, field)
        if field in McpServer.SECRET_MAP_FIELDS and value:
            value = dict.fromkeys(value, "")  # names only: every env/header value is a secret
        if value or key == "stderr":
            transport[key] = value
    data["transport"] = transport
    if server.auth_type == McpServer.AuthType.OAUTH:
        data["requires_oauth"] = True
        oauth = {
            key: getattr(server, field)
            for key, field in _OAUTH_KEYS.items()
            if getattr(server, field)
        }
        oauth.update((server.oauth_metadata or {}).get("registry_extra", {}))
        data["oauth"] = oauth
    elif server.auth_type != McpServer.AuthType.NONE:
        data["auth"] = {
            key: getattr(server, field)
            for key, field in _AUTH_KEYS.items()
            if getattr(server, field)
        }
    data.update(extra)
    return data


def fields_from_client_config(name: str, entry: Any) -> dict[str, Any]:
    """Field values from one entry of a `{"mcpServers": {...}}` client config."""
    if not isinstance(entry, dict):
        raise FormatError(f"mcpServers.{name}", "must be an object")
    where = f"mcpServers.{name}."
    kind = str(entry.get("type") or ("stdio" if "command" in entry else "")).lower()
    if kind not in TRANSPORT_ALIASES:
        raise FormatError(f"{where}type", f"unknown transport {kind or '(missing)'!r}")
    fields: dict[str, Any] = {"name": name, "transport_type": TRANSPORT_ALIASES[kind]}
    for key, (field, expected) in _TRANSPORT_KEYS.items():
        if key in entry:
            fields[field] = _typed(entry, key, expected, where)
    return fields
