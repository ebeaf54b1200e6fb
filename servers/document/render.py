"""Writing a server document: the API's detail and list item, and the registry file.

Seed 004's keys and shapes come first (transport as an object, ids as strings, oauth without
secrets); keys of seeds 000/003 and ours follow (docs/api.md lists each). Secret values are
never rendered: env and header values read "[redacted]" (names are not secret) and stored
credentials show as has_* booleans.
"""

from typing import Any

from audit.services import REDACTED
from mcpcontrol.lib.fields import UNREADABLE_MESSAGE
from servers.credential_port import CredentialState
from servers.document.shapes import CATALOG_DEFAULTS
from servers.models import McpServer

# Seed 004's Data Schema calls the runtime state "connection_state"; ours is the health
# engine's latest outcome (cached, never in the database).
CONNECTION_STATES = {"healthy": "connected", "unknown": "disconnected", "disabled": "disconnected"}


def _id(value: Any) -> str | None:
    return None if value is None else str(value)


def transport(server: McpServer, *, names_as: str = REDACTED) -> dict[str, Any]:
    """Seed 004's transport object; env and header values shown as `names_as`."""
    body: dict[str, Any] = {"type": server.transport_type}
    if server.is_remote:
        body["url"] = server.url
        if isinstance(server.headers, dict) and server.headers:
            body["headers"] = dict.fromkeys(server.headers, names_as)
        return body
    body.update(command=server.command, args=list(server.args or []))
    if isinstance(server.env, dict) and server.env:
        body["env"] = dict.fromkeys(server.env, names_as)
    if server.cwd:
        body["cwd"] = server.cwd
    body["stderr"] = server.stderr
    return body


def oauth(server: McpServer) -> dict[str, Any] | None:
    """The OAuth settings without the client secret (has_client_secret says if one is set)."""
    if server.auth_type != McpServer.AuthType.OAUTH and not server.oauth:
        return None
    return {**server.oauth, "has_client_secret": server.has_secret("oauth_client_secret")}


def tool_functions(server: McpServer) -> dict[str, Any]:
    """Seed 004's tool_functions, derived from the tool list (OpenAI function shape)."""
    functions: dict[str, Any] = {}
    for tool in server.tools or []:
        if isinstance(tool, dict) and isinstance(name := tool.get("name"), str):
            functions[name] = {"type": "function", "function": {
                "name": name, "description": tool.get("description") or "",
                "parameters": tool.get("inputSchema") or {"type": "object"},
            }}  # fmt: skip
    return functions


def list_item(server: McpServer) -> dict[str, Any]:
    """Seed 004's list item (GET /servers and /admin/servers), plus status and enabled."""
    catalog = server.catalog or {}
    return {
        "id": str(server.pk),
        "server_name": server.name,
        "path": server.path,
        "description": server.description,
        "proxy_pass_url": server.url or None,
        "supported_transports": catalog.get("supported_transports") or [server.transport_type],
        "auth_type": server.auth_type,
        "tags": list(server.tags or []),
        "num_tools": server.num_tools,
        "num_stars": catalog.get("num_stars", 0),
        "is_python": catalog.get("is_python", False),
        "license": catalog.get("license"),
        "tool_list": list(server.tools or []),
        "scope": server.scope,
        "user_id": _id(server.owner_id),
        "status": server.status,
        # The console's one vocabulary (McpServer.State), beside seed 004's status.
        "state": str(server.state),
        "enabled": server.is_enabled,
        "created_at": server.created_at,
        "updated_at": server.updated_at,
    }


def detail(
    server: McpServer, *, credential: CredentialState, health: dict[str, Any]
) -> dict[str, Any]:
    """The whole document (GET /servers/{id}), secrets as has_* flags only."""
    catalog = server.catalog or {}
    body = list_item(server)
    body.update({key: catalog.get(key, default) for key, default in CATALOG_DEFAULTS.items()})
    body.update({key: catalog[key] for key in ("schema_version",) if key in catalog})
    body.update(
        startup=server.startup, icon_path=server.icon_path or None, timeout=server.timeout_ms,
        init_timeout=server.init_timeout_ms, chat_menu=server.chat_menu,
        server_instructions=server.server_instructions or None, transport=transport(server),
        requires_oauth=server.auth_type == McpServer.AuthType.OAUTH, oauth=oauth(server),
        oauth_headers=server.oauth_headers or None, oauth_metadata=server.oauth_metadata or None,
        custom_user_vars=server.custom_user_vars or None,
        last_connected=server.last_connected_at, last_error=server.last_error_at,
        error_message=server.error_message or None, version=server.version,
        created_by=_id(server.created_by_id),
    )  # fmt: skip
    body.update(_ours(server, credential=credential, health=health))
    return body


def _ours(
    server: McpServer, *, credential: CredentialState, health: dict[str, Any]
) -> dict[str, Any]:
    """The keys seed 004 does not have: seeds 000/003 and mcpcontrol's own."""
    outcome = str(health.get("outcome") or "unknown")
    body: dict[str, Any] = {
        "alias": server.alias or None, "alias_effective": server.effective_alias,
        "server_key": server.server_key, "credential_mode": server.credential_mode,
        "share_credential": server.share_credential,
        "auth_header_name": server.header_name, "auth_prefix": server.prefix,
        "group_id": _id(server.group_id), "probe_agent_id": _id(server.probe_agent_id),
        "mcp_options": server.mcp_options or {}, "capabilities": server.capabilities or {},
        "tool_functions": tool_functions(server), "init_duration": server.init_duration_ms,
        "last_checked": server.last_checked_at, "response_time_ms": server.response_time_ms,
        "consecutive_failures": server.consecutive_failures,
        "protocol_version": server.protocol_version or None,
        "tools_last_synced_at": server.tools_last_synced_at,
        "connection_state": CONNECTION_STATES.get(outcome, "error"),
        "state_message": server.state_message or None,
        "is_recently_active": server.is_recently_active,
        "health": health,
        "has_auth_token": credential.has_secret and credential.kind in ("api_key", "bearer"),
        "credential": {
            "kind": credential.kind or None, "stored": credential.has_secret,
            "expires_at": credential.expires_at, "needs_reauth": credential.needs_reauth,
            "reason": credential.reason or None,
        },
    }  # fmt: skip
    if not server.secrets_readable:
        body["credentials_error"] = UNREADABLE_MESSAGE
    return body


def registry_file(server: McpServer) -> dict[str, Any]:
    """The registry file of a server (export_servers), read back by seed_servers.

    No secret: env and header values are "" (a seed reads "" as "keep the stored value"),
    no credential, no client secret. Owner and group by name, so a re-seed restores them.
    """
    data: dict[str, Any] = {
        "server_name": server.name, "description": server.description, "path": server.path,
        "tags": list(server.tags or []), "transport": transport(server, names_as=""),
        "auth_type": server.auth_type, "credential_mode": server.credential_mode,
        "share_credential": server.share_credential,
        "scope": server.scope, "enabled": server.is_enabled, "startup": server.startup,
        "chat_menu": server.chat_menu, "timeout": server.timeout_ms,
        "init_timeout": server.init_timeout_ms,
    }  # fmt: skip
    optional = {
        "alias": server.alias, "icon_path": server.icon_path,
        "server_instructions": server.server_instructions, "auth_header_name": server.header_name,
        "auth_prefix": server.prefix, "oauth_headers": server.oauth_headers,
        "custom_user_vars": server.custom_user_vars, "mcp_options": server.mcp_options,
        "owner": server.owner.get_username() if server.owner is not None else None,
        "group": server.group.name if server.group is not None else None,
    }  # fmt: skip
    data.update({key: value for key, value in optional.items() if value})
    data.update(server.catalog or {})
    if server.oauth:
        data["oauth"] = dict(server.oauth)
    return data


def client_entry_document(name: str, entry: Any) -> dict[str, Any]:
    """A `{"mcpServers": {name: entry}}` client config entry as a server document."""
    if not isinstance(entry, dict):
        return {"server_name": name, "transport": entry}  # parse reports the type
    kind = entry.get("type") or ("stdio" if "command" in entry else None)
    keys = ("url", "command", "args", "env", "cwd", "headers")
    transport_doc = {"type": kind, **{k: entry[k] for k in keys if k in entry}}
    unknown = {k: v for k, v in entry.items() if k not in (*keys, "type")}
    return {"server_name": name, "transport": transport_doc, **unknown}


__all__ = [
    "client_entry_document",
    "detail",
    "list_item",
    "oauth",
    "registry_file",
    "tool_functions",
    "transport",
]
