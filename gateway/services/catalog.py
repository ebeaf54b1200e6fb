"""What one agent sees through the gateway: its tools, named by its convention, and how a
call to one of them reaches its upstream. Synchronous (the ORM); the endpoint runs these in
a worker thread."""

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction

from gateway.models import AgentPolicy, ToolCall
from gateway.services.policy import (
    ToolFilter,
    agent_policy_get,
    agent_rate_limit,
    agent_tool_filters,
    tool_refused_by,
)
from mcpcontrol.lib.urlguard import BlockedUrl, check_url
from servers.credential_port import Resolved, credentials
from servers.mcp_client import Target
from servers.models import MAX_TIMEOUT_MS, Agent, McpServer
from servers.services import agent_servers, config_keys, tool_names, tool_prefixes

# A call's OAuth renewal waits at most this long (a slow authorization server must not
# eat the whole call budget); a late refresh still completes for the next call.
REFRESH_BUDGET_SECONDS = 5.0


@dataclass(frozen=True, kw_only=True)
class Route:
    server_id: int
    server_name: str
    tool: str  # the upstream's own name


@dataclass(frozen=True, kw_only=True)
class ServerRef:
    """One server the agent may use, with the prefix its names carry (resources, prompts)."""

    server_id: int
    server_name: str
    key: str  # mcp-config's server key: mcp__<key>__<name>, mcpcontrol://<key>/<uri>
    prefix: str  # what the agent's naming puts before an upstream name: "mcp__key__" or "alias_"


@dataclass(kw_only=True)
class Catalog:
    """The agent's tool list (MCP tool dicts under the agent's names) and their routes."""

    tools: list[dict[str, Any]] = field(default_factory=list)
    routes: dict[str, Route] = field(default_factory=dict)
    hidden: dict[str, str] = field(default_factory=dict)  # name -> why it is not offered
    servers: list[ServerRef] = field(default_factory=list)  # for resources/* and prompts/*
    filters: list[ToolFilter] = field(default_factory=list)  # the policies, for prompts too
    schemas: dict[str, Any] = field(default_factory=dict)  # name -> inputSchema, by name
    rate_limit: int = 0  # tools/call per minute (gateway.services.ratelimit); 0: unlimited


def _by_name(server: McpServer) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in server.tools or [] if isinstance(t, dict) and "name" in t}


def agent_catalog(*, agent: Agent) -> Catalog:
    """The tools of every enabled server the agent may use, from the lists the health engine
    stored, named as mcp-config names them (servers.services.tool_names).

    A name two servers would share is offered by neither (routing it would guess); a name
    the agent's policy or one of its owner's group policies refuses is neither listed nor
    callable.
    """
    servers = agent_servers(agent)
    policy = agent_policy_get(agent=agent)
    filters = agent_tool_filters(agent=agent, policy=policy)
    naming = "alias_name" if policy.naming == AgentPolicy.Naming.ALIAS else "mcp_name"
    names = tool_names(servers)
    collided = {c["name"] for c in names["collisions"]}
    by_server = {str(s.pk): (s, _by_name(s)) for s in servers}  # ids are strings in entries
    catalog = Catalog(filters=filters, servers=server_refs(servers, naming=naming),
                      rate_limit=agent_rate_limit(policy))  # fmt: skip
    for entry in names["tools"]:
        name = entry[naming]
        if name in collided:
            catalog.hidden[name] = "two servers offer a tool under this name"
            continue
        refused = tool_refused_by(filters, name)
        if refused is not None:
            catalog.hidden[name] = refused  # says "policy": tools/call records it as denied
            continue
        server, tools = by_server[str(entry["server_id"])]
        upstream = tools.get(entry["tool"], {"name": entry["tool"]})
        schema = upstream.get("inputSchema") or {"type": "object"}
        catalog.tools.append({"name": name, "description": upstream.get("description") or "",
                              "inputSchema": schema})  # fmt: skip
        catalog.schemas[name] = schema
        catalog.routes[name] = Route(server_id=server.pk, server_name=server.name,
                                     tool=entry["tool"])  # fmt: skip
    return catalog


def server_refs(servers: list[McpServer], *, naming: str) -> list[ServerRef]:
    """The servers with the keys and prefixes tool_names gives them (same uniqueness rule)."""
    keys, aliases = config_keys(servers), tool_prefixes(servers)
    return [
        ServerRef(server_id=s.pk, server_name=s.name, key=keys[s.pk],
                  prefix=f"mcp__{keys[s.pk]}__" if naming == "mcp_name" else f"{aliases[s.pk]}_")
        for s in servers
    ]  # fmt: skip


def console_url(server_id: int) -> str:
    """Where a person re-authorizes the server's credential (the console's server page)."""
    return f"{settings.MCPCONTROL_PUBLIC_URL}/admin/servers/mcpserver/{server_id}/change/"


def reconnect_hint(*, server_id: int, agent_id: int) -> str:
    """Where to reconnect: the console for staff, /me/ for the agent's owner (who may not be)."""
    me = f"{settings.MCPCONTROL_PUBLIC_URL}/me/agents/{agent_id}/"
    return f"reconnect at {console_url(server_id)} (or, as the agent's owner, {me})"


def _timeout(server: McpServer) -> float:
    return min(server.timeout_ms, MAX_TIMEOUT_MS) / 1000


def call_target(*, agent: Agent, server_id: int) -> Target | str:
    """How to reach the server as this agent (its own credential or the shared one, OAuth
    renewed when due, ${VAR}s filled in), or why it cannot be reached."""
    server = McpServer.objects.usable_by(agent.owner).enabled().filter(pk=server_id).first()
    if server is None:
        return "the server is gone, disabled or no longer shared with this agent"
    if server.transport_type == McpServer.Transport.STDIO and not settings.MCPCONTROL_ALLOW_STDIO:
        return "stdio servers are not run here (MCPCONTROL_ALLOW_STDIO is off)"
    needs = [(server, agent)]
    credentials().refresh_due(needs=needs, budget=REFRESH_BUDGET_SECONDS)
    resolved = credentials().resolve(needs=needs)[server.pk]
    if resolved.missing:
        return f"auth: {resolved.missing}; {reconnect_hint(server_id=server.pk, agent_id=agent.pk)}"
    return target_from(server, resolved)


def target_from(server: McpServer, resolved: Resolved) -> Target | str:
    """The Target a resolved credential reaches the server with (remote URLs SSRF-checked)."""
    seconds = _timeout(server)
    if server.transport_type == McpServer.Transport.STDIO:
        return Target(transport=server.transport_type, command=server.command,
                      args=resolved.args, env=resolved.env, cwd=server.cwd,
                      timeout=seconds, init_timeout=seconds)  # fmt: skip
    try:
        check_url(resolved.url)  # the SSRF guard, as for health checks
    except BlockedUrl as exc:
        return f"URL refused: {exc}"
    return Target(transport=server.transport_type, url=resolved.url, headers=resolved.headers,
                  timeout=seconds, init_timeout=seconds)  # fmt: skip


def credential_refused(
    *, agent: Agent | None, server_id: int, reason: str, presented_at: datetime
) -> bool:
    """The upstream refused (401/403) the credential presented for this agent: flag it as
    needing re-authorization through the port, so it is not presented again and the console
    and /me/ say so. Only a credential unchanged since `presented_at` is flagged."""
    server = McpServer.objects.filter(pk=server_id).first()
    if server is None or server.auth_type == McpServer.AuthType.NONE:
        return False
    return credentials().mark_reauth(
        server=server, agent=agent, reason=f"the gateway's call was refused: {reason}",
        unchanged_since=presented_at,
    )  # fmt: skip


def auth_refusal_reason(
    *, agent: Agent | None, server_id: int, server_name: str, reason: str,
    presented_at: datetime,
) -> str:  # fmt: skip
    """The tool error for an upstream's 401/403: the credential is flagged (credential_refused)
    and the caller told where to reconnect (the agent's owner: /me/ too)."""
    text = f"{server_name}: {reason}"
    if credential_refused(agent=agent, server_id=server_id, reason=reason,
                          presented_at=presented_at):  # fmt: skip
        text += "; the credential is marked as needing re-authorization"
    if agent is None:
        return f"{text}; reconnect at {console_url(server_id)}"
    return f"{text}; {reconnect_hint(server_id=server_id, agent_id=agent.pk)}"


def tool_call_record(
    *, agent_id: int, server_id: int | None, tool: str, started: float, outcome: str,
    argument_bytes: int,
) -> None:  # fmt: skip
    """One audit row per call: who called what, how long, how it ended; never the arguments."""
    duration_ms = round((time.monotonic() - started) * 1000)
    with transaction.atomic():
        ToolCall.objects.create(
            agent_id=agent_id, server_id=server_id, tool=tool[:255], duration_ms=duration_ms,
            outcome=outcome, argument_bytes=argument_bytes,
        )  # fmt: skip
