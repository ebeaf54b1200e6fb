"""The per-server route /mcp/servers{path}: the SDK's client through the ASGI application
against the echo peer (a real streamable HTTP upstream), and the console's shadowing line."""

from typing import Any

import httpx2
import pytest
from django.test import Client as DjangoClient
from mcp import Client

from gateway.services import agent_policy_set
from gateway.tests.test_gateway_mcp import ECHO_TOOLS, echo_server, key_for, recorded, run, text
from mcpcontrol.api.jwt import jwt_pair_for
from servers.models import McpServer
from servers.services import server_path_resolve, server_path_shadowing
from tests.factories import (
    AdminFactory,
    AgentFactory,
    GrantFactory,
    GroupFactory,
    McpServerFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db(transaction=True)

PRIVATE = McpServer.Scope.PRIVATE_USER


def jwt(user: Any, scopes: tuple[str, ...] = ("read:servers",)) -> str:
    return str(jwt_pair_for(user=user, scopes=list(scopes)).access_token)


def _status(url: str, token: str | None) -> int:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Accept": "application/json, text/event-stream",
               "MCP-Protocol-Version": "2025-06-18"}  # fmt: skip
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx2.post(url, json=body, headers=headers, timeout=10).status_code


async def _list_and_add(client: Client) -> Any:
    tools = await client.list_tools()
    return [t.name for t in tools.tools], await client.call_tool("add", {"a": 2, "b": 3})


def test_an_agent_lists_and_calls_the_servers_tools_under_their_own_names(gateway_url, echo_peer):
    server = echo_server(echo_peer, path="/echo")
    agent = AgentFactory()
    names, result = run(f"{gateway_url}/mcp/servers/echo", key_for(agent), _list_and_add)
    assert names == ["whoami", "add", "hang"]
    assert text(result) == "5" and not result.is_error
    call = recorded()  # the aggregating endpoint's ToolCall trail, under the name used
    assert (call.agent_id, call.server_id, call.tool, call.outcome) == (
        agent.pk, server.pk, "add", "ok")  # fmt: skip


def test_a_users_jwt_lists_and_calls_with_the_shared_credential(gateway_url, echo_peer):
    user = UserFactory()
    echo_server(echo_peer, path="/tools/echo", auth_type="bearer", scope=PRIVATE, owner=user)
    GrantFactory(server=McpServer.objects.get(path="/tools/echo"), secret="users-own")
    url = f"{gateway_url}/mcp/servers/tools/echo/"  # a trailing slash reaches it too

    async def work(client: Client) -> Any:
        names, added = await _list_and_add(client)
        return names, added, await client.call_tool("whoami", {})

    names, added, who = run(url, jwt(user), work)
    assert names == ["whoami", "add", "hang"] and text(added) == "5"
    assert text(who) == "Bearer users-own"


def test_a_bare_user_cannot_present_per_agent_credentials(gateway_url, echo_peer):
    echo_server(echo_peer, path="/echo", auth_type="bearer",
                credential_mode=McpServer.CredentialMode.PER_AGENT)  # fmt: skip
    user = UserFactory()

    async def work(client: Client) -> Any:
        return await client.call_tool("whoami", {})

    result = run(f"{gateway_url}/mcp/servers/echo", jwt(user), work)
    assert result.is_error and "per-agent credentials" in text(result)
    assert "agents' keys" in text(result)


def test_the_agents_policy_applies_to_its_aggregated_names(gateway_url, echo_peer):
    echo_server(echo_peer, path="/echo")
    agent = AgentFactory()
    agent_policy_set(actor=None, agent=agent, changes={"deny": ["mcp__echo__hang"]})

    async def work(client: Client) -> Any:
        tools = await client.list_tools()
        return [t.name for t in tools.tools], await client.call_tool("hang", {})

    names, refused = run(f"{gateway_url}/mcp/servers/echo", key_for(agent), work)
    assert names == ["whoami", "add"]
    assert refused.is_error and "policy denies" in text(refused)


def test_bad_bearers_are_401_and_a_jwt_without_the_scope_403(gateway_url):
    McpServerFactory(path="/echo")
    url = f"{gateway_url}/mcp/servers/echo"
    user = UserFactory()
    assert _status(url, None) == 401
    assert _status(url, "mcpa_" + "x" * 40) == 401
    assert _status(url, "not-a-jwt") == 401
    assert _status(url, jwt(user, scopes=("read:tokens",))) == 403
    assert _status(url, jwt(user)) == 200


def test_unknown_paths_and_servers_the_caller_may_not_use_are_404(gateway_url):
    owner, stranger = UserFactory(), AgentFactory()
    McpServerFactory(path="/hers", scope=PRIVATE, owner=owner)
    McpServerFactory(path="/off", is_enabled=False)
    key = key_for(stranger)
    assert _status(f"{gateway_url}/mcp/servers/nowhere", key) == 404
    assert _status(f"{gateway_url}/mcp/servers/off", key) == 404
    assert _status(f"{gateway_url}/mcp/servers/hers", key) == 404
    assert _status(f"{gateway_url}/mcp/servers/hers", jwt(stranger.owner)) == 404
    assert _status(f"{gateway_url}/mcp/servers/hers", jwt(owner)) == 200


def test_the_callers_private_server_shadows_the_app_wide_one(gateway_url, echo_peer):
    alice, bob = AgentFactory(), AgentFactory()
    app = echo_server(echo_peer, name="App echo", path="/echo", auth_type="bearer")
    mine = echo_server(echo_peer, name="Alice echo", path="/echo", auth_type="bearer",
                       scope=PRIVATE, owner=alice.owner)  # fmt: skip
    GrantFactory(server=app, secret="app-secret")
    GrantFactory(server=mine, secret="alice-secret")

    async def whoami(client: Client) -> str:
        return text(await client.call_tool("whoami", {}))

    url = f"{gateway_url}/mcp/servers/echo"
    assert run(url, key_for(alice), whoami) == "Bearer alice-secret"
    assert run(url, key_for(bob), whoami) == "Bearer app-secret"


def test_precedence_is_private_then_group_then_user_shared_then_app_wide(db):
    user, other = UserFactory(), UserFactory()
    team = GroupFactory()
    user.groups.add(team)
    app = McpServerFactory(path="/x", tools=ECHO_TOOLS)
    shared = McpServerFactory(path="/x", scope=McpServer.Scope.SHARED_USER, owner=other)
    grouped = McpServerFactory(path="/x", scope=PRIVATE, owner=other, group=team)
    private = McpServerFactory(path="/x", scope=PRIVATE, owner=user)
    for winner in (private, grouped, shared, app):
        choice = server_path_resolve(user=user, path="/x")
        assert choice.winner == winner
        winner.delete()
    assert server_path_resolve(user=user, path="/x").winner is None


def _page(server: McpServer, viewer: Any) -> str:
    client = DjangoClient()
    client.force_login(viewer)
    response = client.get(f"/admin/servers/mcpserver/{server.pk}/change/")
    assert response.status_code == 200
    return response.content.decode()


def test_the_console_shows_who_shadows_whom(db):
    team = GroupFactory(name="research")
    app = McpServerFactory(name="App search", path="/search")
    grouped = McpServerFactory(name="Team search", path="/search", scope=PRIVATE,
                               owner=UserFactory(), group=team)  # fmt: skip
    admin = AdminFactory()
    assert "path /search is shadowed for users of research by Team search" in _page(app, admin)
    assert "path /search shadows App search for users of research" in _page(grouped, admin)


def test_the_console_names_only_servers_the_viewer_may_see(db):
    # The service behind the page (a non-superuser's server page answers 500 on main today,
    # KeyError in servers/admin/forms.py, so the page itself is checked as a superuser above).
    viewer = UserFactory(is_staff=True)
    app = McpServerFactory(name="App search", path="/search")
    McpServerFactory(name="Secret search", path="/search", scope=PRIVATE, owner=UserFactory())
    assert server_path_shadowing(server=app, viewer=viewer) == []
    [line] = server_path_shadowing(server=app, viewer=AdminFactory())
    assert line.startswith("path /search is shadowed for user ") and "by Secret search" in line


def test_a_bare_user_never_presents_another_users_unshared_credential(db):
    from gateway.services.server_route import user_call_target

    owner, caller = UserFactory(), UserFactory()
    theirs = McpServerFactory(path="/theirs", scope=McpServer.Scope.SHARED_USER, owner=owner,
                              auth_type="bearer")  # fmt: skip
    GrantFactory(server=theirs, secret="owners-token")
    refused = user_call_target(user=caller, server_id=theirs.pk)
    assert isinstance(refused, str) and "does not share its credential" in refused
    target = user_call_target(user=owner, server_id=theirs.pk)
    assert not isinstance(target, str) and target.headers["Authorization"] == "Bearer owners-token"
