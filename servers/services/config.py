"""What clients are handed: the MCP client config of an agent, tool names, runtime state.

The config reveals secrets, so building it writes a SECRET_READ audit row in the same
transaction; the caller must not cache or log the result.
"""

from datetime import timedelta
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_event_create
from servers.credentials import MissingCredential, credential_headers
from servers.models import Agent, McpServer
from servers.services.health import health_cache_key

RECENTLY_ACTIVE = timedelta(minutes=5)

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


def server_is_recently_active(server: McpServer) -> bool:
    last = server.last_connected_at
    return last is not None and timezone.now() - last <= RECENTLY_ACTIVE


def _entry(server: McpServer, agent: Agent) -> dict[str, Any]:
    """One mcpServers entry; raises MissingCredential when the auth type needs one."""
    kind = CLIENT_TYPES[McpServer.Transport(server.transport_type)]
    if server.transport_type == McpServer.Transport.STDIO:
        return {"type": kind, "command": server.command, "args": list(server.args or []),
                "env": dict(server.env or {})}  # fmt: skip
    return {
        "type": kind,
        "url": server.url,
        "headers": credential_headers(server=server, agent=agent),
    }


def agent_servers(agent: Agent) -> list[McpServer]:
    """Enabled servers the agent may use: its owner's visibility."""
    return list(McpServer.objects.for_user(agent.owner).enabled().order_by("name", "id"))


def mcp_config_build(*, actor: Any, agent: Agent) -> dict[str, Any]:
    """The agent's client config, credentials resolved as each server's auth type demands.

    1. Take every enabled server the agent's owner may see.
    2. Resolve headers through credential_headers (per-agent first in per_agent mode).
    3. Servers without a usable credential go to "missing_credentials", never dropped.
    4. Record one SECRET_READ audit row naming the servers whose secrets were revealed.
    """
    config: dict[str, Any] = {}
    missing: list[dict[str, Any]] = []
    agent = Agent.objects.prefetch_related("connections").get(pk=agent.pk)
    for server in agent_servers(agent):
        # "A B" and "a_b" share a key: suffix the id rather than let one silently replace
        # the other in the agent's config.
        key = (
            server.server_key
            if server.server_key not in config
            else f"{server.server_key}_{server.pk}"
        )
        try:
            config[key] = _entry(server, agent)
        except MissingCredential as exc:
            missing.append({"server_id": str(server.pk), "server_key": server.server_key,
                            "server_name": server.name, "reason": str(exc)})  # fmt: skip
    with transaction.atomic():
        audit_event_create(
            action=AuditEvent.Action.SECRET_READ, target=agent, actor=actor,
            changes={"mcp_config": {"old": None, "new": sorted(config)}},
        )  # fmt: skip
    return {"mcpServers": config, "missing_credentials": missing}


def _tool_name(tool: Any) -> str | None:
    if isinstance(tool, str):
        return tool
    if isinstance(tool, dict) and isinstance(name := tool.get("name"), str):
        return name
    return None


def tool_names(servers: list[McpServer]) -> dict[str, Any]:
    """Every tool in both conventions (mcp__<key>__<tool> and <alias>_<tool>).

    Two tools that end up with the same name are reported under "collisions" and both kept:
    merging them would silently route calls to the wrong server.
    """
    tools: list[dict[str, Any]] = []
    owners: dict[str, list[str]] = {}
    for server in servers:
        for tool in server.tools or []:
            name = _tool_name(tool)
            if name is None:
                continue
            entry = {"server_id": str(server.pk), "server_key": server.server_key,
                     "alias": server.alias, "tool": name,
                     "mcp_name": f"mcp__{server.server_key}__{name}",
                     "alias_name": f"{server.alias}_{name}"}  # fmt: skip
            tools.append(entry)
            for full in {entry["mcp_name"], entry["alias_name"]}:
                owners.setdefault(full, []).append(entry["server_id"])
    collisions = [
        {"name": name, "server_ids": ids} for name, ids in sorted(owners.items()) if len(ids) > 1
    ]
    return {"tools": tools, "collisions": collisions}
