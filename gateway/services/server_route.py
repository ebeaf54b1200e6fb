"""What the per-server route /mcp/servers{path} (gateway.api.server_route) offers: one
server's stored tools under the upstream's own names, and how a bare user (a JWT, no agent)
reaches that server. Synchronous (the ORM); the endpoint runs these in a worker thread."""

from collections.abc import Callable
from typing import Any

from django.conf import settings

from gateway.models import AgentPolicy
from gateway.services.catalog import Catalog, Route, console_url, target_from
from gateway.services.policy import agent_policy_get, policy_allows
from servers.credential_port import credentials
from servers.mcp_client import Target
from servers.models import Agent, McpServer
from servers.services import agent_servers, tool_names

REFRESH_BUDGET_SECONDS = 5.0  # as the aggregating endpoint's (catalog.REFRESH_BUDGET_SECONDS)
AGENT_HINT = "call it with one of your agents' keys (mcpa_...)"


def _policy_check(agent: Agent | None, server: McpServer) -> Callable[[str], bool]:
    """Whether the agent's policy lets a tool of `server` through. Its patterns are written
    against the names the aggregating endpoint gives (mcp__<key>__<tool> or <alias>_<tool>),
    so the same names are judged here: one policy, whichever route the agent takes."""
    if agent is None:
        return lambda name: True
    policy = agent_policy_get(agent=agent)
    if not policy.allow and not policy.deny:
        return lambda name: True
    naming = "alias_name" if policy.naming == AgentPolicy.Naming.ALIAS else "mcp_name"
    entries = tool_names(agent_servers(agent))["tools"]
    named = {e["tool"]: e[naming] for e in entries if e["server_id"] == str(server.pk)}
    return lambda name: policy_allows(policy, named.get(name, name))


def server_catalog(*, agent: Agent | None, server: McpServer) -> Catalog:
    """The server's tools as the health engine stored them, not renamed; for an agent, the
    ones its policy denies are neither listed nor callable."""
    allowed = _policy_check(agent, server)
    catalog = Catalog()
    for tool in server.tools or []:
        name = tool.get("name") if isinstance(tool, dict) else None
        if not isinstance(name, str) or name in catalog.routes or name in catalog.hidden:
            continue
        if not allowed(name):
            catalog.hidden[name] = "the agent's gateway policy denies this tool"
            continue
        catalog.tools.append({"name": name, "description": tool.get("description") or "",
                              "inputSchema": tool.get("inputSchema") or {"type": "object"}})  # fmt: skip
        catalog.routes[name] = Route(server_id=server.pk, server_name=server.name, tool=name)
    return catalog


def _bare_user_refusal(server: McpServer, user: Any) -> str:
    """Why a user calling without an agent may not reach `server` ("" when they may).

    Without an agent only the server's shared credential can be presented, with the
    variables of the server's owner: fine for the caller's own server and for an app-wide
    one that takes no variables; anything else would present someone else's values."""
    if server.credential_mode == McpServer.CredentialMode.PER_AGENT:
        return f"auth: {server.name} uses per-agent credentials; {AGENT_HINT}"
    if server.owner_id == user.pk:
        return ""
    if server.scope != McpServer.Scope.SHARED_APP and server.auth_type != McpServer.AuthType.NONE \
            and not server.share_credential:  # fmt: skip
        return f"auth: the owner of {server.name} does not share its credential with other users"
    if server.variables_used():
        return f"auth: {server.name} takes per-user variables; {AGENT_HINT}"
    return ""


def user_call_target(*, user: Any, server_id: int) -> Target | str:
    """How a bare user reaches the server (its shared credential, OAuth renewed when due),
    or why they cannot."""
    server = McpServer.objects.usable_by(user).enabled().filter(pk=server_id).first()
    if server is None:
        return "the server is gone, disabled or no longer shared with you"
    if refusal := _bare_user_refusal(server, user):
        return refusal
    if server.transport_type == McpServer.Transport.STDIO and not settings.MCPCONTROL_ALLOW_STDIO:
        return "stdio servers are not run here (MCPCONTROL_ALLOW_STDIO is off)"
    needs: list[tuple[McpServer, Agent | None]] = [(server, None)]
    credentials().refresh_due(needs=needs, budget=REFRESH_BUDGET_SECONDS)
    resolved = credentials().resolve(needs=needs)[server.pk]
    if resolved.missing:
        return f"auth: {resolved.missing}; reconnect at {console_url(server.pk)}"
    return target_from(server, resolved)
