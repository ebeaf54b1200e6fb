"""What clients are handed: the MCP client config of an agent, tool names, runtime state.

The config reveals secrets, so building it writes a SECRET_READ audit row in the same
transaction; the caller must not cache or log the result.
"""

from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from audit.models import AuditEvent
from audit.services import audit_event_create
from servers.credential_port import Resolved, credentials
from servers.models import Agent, McpServer
from servers.services.health import health_cache_key

# Client config "type" per transport.
CLIENT_TYPES = {
    McpServer.Transport.STREAMABLE_HTTP: "http",
    McpServer.Transport.SSE: "sse",
    McpServer.Transport.STDIO: "stdio",
    McpServer.Transport.WEBSOCKET: "ws",
}


def server_connection_state(server_id: int) -> dict[str, Any]:
    """The health engine's latest runtime state (never stored), or {"state": "unknown"}."""
    state = cache.get(health_cache_key(server_id))
    return dict(state) if isinstance(state, dict) else {"state": "unknown"}


def _unique(servers: list[McpServer], name_of: Any) -> dict[int, str]:
    """One name per server; a server whose name is taken gets its id appended ("A B" and
    "a_b" share a key: neither may silently replace the other)."""
    names: dict[int, str] = {}
    taken: set[str] = set()
    for server in servers:
        name = name_of(server)
        name = name if name not in taken else f"{name}_{server.pk}"
        names[server.pk] = name
        taken.add(name)
    return names


def config_keys(servers: list[McpServer]) -> dict[int, str]:
    """Each server's key in an agent's config and in its mcp__<key>__<tool> tool names."""
    return _unique(servers, lambda s: s.server_key)


def tool_prefixes(servers: list[McpServer]) -> dict[int, str]:
    """Each server's <alias>_ prefix of seed 000's tool names, unique the same way."""
    return _unique(servers, lambda s: s.effective_alias)


def agent_servers(agent: Agent) -> list[McpServer]:
    """Enabled servers the agent may use (what its owner may use: never another user's
    private server, even when the owner is a superuser), in a stable order."""
    return list(McpServer.objects.usable_by(agent.owner).enabled().order_by("name", "id"))


def _entry(server: McpServer, resolved: Resolved) -> dict[str, Any]:
    kind = CLIENT_TYPES[McpServer.Transport(server.transport_type)]
    if not server.is_remote:
        entry: dict[str, Any] = {"type": kind, "command": server.command, "args": resolved.args}
        entry["env"] = resolved.env
        return entry
    return {"type": kind, "url": resolved.url, "headers": resolved.headers}


def mcp_config_build(*, actor: Any, agent: Agent) -> dict[str, Any]:
    """The agent's client config, credentials resolved as each server's auth type demands.

    1. Take every enabled server the agent's owner may see.
    2. Renew the OAuth grants among them that expire within 5 minutes, waiting at most
       MCPCONTROL_CONFIG_REFRESH_BUDGET seconds (a slow authorization server delays no one
       longer; an expired token is then listed as missing, never handed out).
    3. Resolve credentials and variables in one read; unusable servers go to
       "missing_credentials" with the reason, never dropped.
    4. Record one SECRET_READ audit row naming the servers whose secrets were revealed.
    """
    servers = agent_servers(agent)
    needs = [(server, agent) for server in servers]
    credentials().refresh_due(needs=needs, budget=settings.MCPCONTROL_CONFIG_REFRESH_BUDGET)
    resolved = credentials().resolve(needs=needs)
    keys = config_keys(servers)
    config: dict[str, Any] = {}
    missing: list[dict[str, Any]] = []
    for server in servers:
        found = resolved[server.pk]
        if found.missing:
            missing.append({"server_id": str(server.pk), "server_key": keys[server.pk],
                            "server_name": server.name, "reason": found.missing})  # fmt: skip
        else:
            config[keys[server.pk]] = _entry(server, found)
    with transaction.atomic():
        audit_event_create(
            action=AuditEvent.Action.SECRET_READ, target=agent, actor=actor,
            changes={"mcp_config": {"old": None, "new": sorted(config)}},
        )  # fmt: skip
    return {"mcpServers": config, "missing_credentials": missing}


# mcp-config's gateway mode: the agent holds our URL and its own key, no upstream secret.
GATEWAY_KEY_PLACEHOLDER = "<agent API key: POST /api/v1/agents/{id}/keys>"


def mcp_config_gateway(*, agent: Agent, key: str = "") -> dict[str, Any]:
    """One entry, the agent's gateway endpoint (docs/gateway.md), with `key` (an agent key
    the caller already holds) or a placeholder in its Authorization header. No upstream
    secret is read, so nothing is audited."""
    url = f"{settings.MCPCONTROL_PUBLIC_URL}/mcp/agents/{agent.pk}"
    bearer = key or GATEWAY_KEY_PLACEHOLDER.format(id=agent.pk)
    entry = {"type": "http", "url": url, "headers": {"Authorization": f"Bearer {bearer}"}}
    return {"mcpServers": {"mcpcontrol": entry}, "missing_credentials": []}


def _tool_name(tool: Any) -> str | None:
    if isinstance(tool, str):
        return tool
    if isinstance(tool, dict) and isinstance(name := tool.get("name"), str):
        return name
    return None


def tool_names(servers: list[McpServer]) -> dict[str, Any]:
    """Every tool in both conventions (mcp__<key>__<tool> and <alias>_<tool>), with the same
    server keys as the agent's config.

    Two tools that end up with the same name are reported under "collisions" and both kept:
    merging them would silently route calls to the wrong server.
    """
    keys, prefixes = config_keys(servers), tool_prefixes(servers)
    tools: list[dict[str, Any]] = []
    owners: dict[str, list[str]] = {}
    for server in servers:
        for tool in server.tools or []:
            name = _tool_name(tool)
            if name is None:
                continue
            key, prefix = keys[server.pk], prefixes[server.pk]
            entry = {"server_id": str(server.pk), "server_key": key, "alias": prefix,
                     "tool": name, "mcp_name": f"mcp__{key}__{name}",
                     "alias_name": f"{prefix}_{name}"}  # fmt: skip
            tools.append(entry)
            for full in {entry["mcp_name"], entry["alias_name"]}:
                owners.setdefault(full, []).append(entry["server_id"])
    collisions = [
        {"name": name, "server_ids": ids} for name, ids in sorted(owners.items()) if len(ids) > 1
    ]
    return {"tools": tools, "collisions": collisions}
