"""The SDK's client through the gateway, against real upstream peers."""

import contextlib
import sys
import time
from typing import Any

import anyio
import httpx2
import pytest
from django.db import OperationalError
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from gateway.models import AgentKey, ToolCall
from gateway.services import agent_key_create, agent_key_revoke
from servers.models import McpServer
from tests.factories import AgentConnectionFactory, AgentFactory, GrantFactory, McpServerFactory
from tests.mcp_peers import PEERS

pytestmark = pytest.mark.django_db(transaction=True)

ECHO_TOOLS = [{"name": "whoami"}, {"name": "add"}, {"name": "hang"}]


def echo_server(peer: Any, **fields: Any) -> McpServer:
    fields.setdefault("name", "Echo")
    fields.setdefault("tools", ECHO_TOOLS)
    return McpServerFactory(url=f"http://127.0.0.1:{peer.port}/mcp", **fields)


async def _session(url: str, token: str, work: Any) -> Any:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
    async with http, Client(streamable_http_client(url, http_client=http)) as client:
        return await work(client)


def run(url: str, token: str, work: Any) -> Any:
    return anyio.run(_session, url, token, work)


def text(result: Any) -> str:
    return result.content[0].text


def recorded(**match: Any) -> ToolCall:
    """The one ToolCall row matching, once the gateway's flusher wrote it (about a second)."""
    deadline = time.monotonic() + 10
    rows: list[ToolCall] = []
    while not rows and time.monotonic() < deadline:
        # The test database is SQLite's shared in-memory one: a table the flusher is writing
        # is locked (no busy wait there), so a failed read is retried.
        with contextlib.suppress(OperationalError):
            rows = list(ToolCall.objects.filter(**match))
        if not rows:
            time.sleep(0.1)
    [row] = rows
    return row


def key_for(agent: Any) -> str:
    return agent_key_create(actor=None, agent=agent, name="test")[1]


def test_it_lists_and_calls_upstream_tools(gateway_url, echo_peer):
    server = echo_server(
        echo_peer,
    )
    agent = AgentFactory()
    url = f"{gateway_url}/mcp/agents/{agent.pk}"

    async def work(client: Client) -> Any:
        tools = await client.list_tools()
        return [t.name for t in tools.tools], await client.call_tool(
            "mcp__echo__add", {"a": 2, "b": 3}
        )

    names, result = run(url, key_for(agent), work)
    assert names == ["mcp__echo__whoami", "mcp__echo__add", "mcp__echo__hang"]
    assert text(result) == "5" and not result.is_error
    call = recorded()
    assert (call.server_id, call.tool, call.outcome) == (server.pk, "mcp__echo__add", "ok")
    assert call.argument_bytes == len('{"a": 2, "b": 3}')


def test_two_agents_present_their_own_credentials_upstream(gateway_url, echo_peer):
    server = echo_server(echo_peer, auth_type="bearer",
                         credential_mode=McpServer.CredentialMode.PER_AGENT)  # fmt: skip
    ann, bob = AgentFactory(), AgentFactory()
    for agent, secret in ((ann, "ann-secret"), (bob, "bob-secret")):
        AgentConnectionFactory(agent=agent, server=server)
        GrantFactory(server=server, agent=agent, secret=secret)

    async def whoami(client: Client) -> str:
        return text(await client.call_tool("mcp__echo__whoami", {}))

    ann_key, bob_key = key_for(ann), key_for(bob)
    for _ in range(2):
        assert run(f"{gateway_url}/mcp/agents/{ann.pk}", ann_key, whoami) == "Bearer ann-secret"
        assert run(f"{gateway_url}/mcp/agents/{bob.pk}", bob_key, whoami) == "Bearer bob-secret"
    # One pooled upstream session per credential, reused by the second round of calls.
    from mcpcontrol.asgi import gateway

    assert gateway.sessions is not None and len(gateway.sessions.held) == 2


def test_an_agent_without_its_credential_is_told_where_to_reconnect(gateway_url, echo_peer):
    server = echo_server(echo_peer, auth_type="bearer",
                         credential_mode=McpServer.CredentialMode.PER_AGENT)  # fmt: skip
    agent = AgentFactory()

    async def whoami(client: Client) -> Any:
        return await client.call_tool("mcp__echo__whoami", {})

    result = run(f"{gateway_url}/mcp/agents/{agent.pk}", key_for(agent), whoami)
    assert result.is_error
    assert f"reconnect at http://127.0.0.1:8000/admin/servers/mcpserver/{server.pk}/" in text(
        result
    )
    assert recorded().outcome == "auth_required"


def test_a_hanging_upstream_times_out_while_other_calls_succeed(gateway_url, echo_peer):
    echo_server(echo_peer, timeout_ms=1500)
    agent = AgentFactory()
    results: dict[str, Any] = {}

    async def work(client: Client) -> None:
        async def hang() -> None:
            results["hang"] = await client.call_tool("mcp__echo__hang", {})

        async def adds() -> None:
            started = time.monotonic()
            results["add"] = await client.call_tool("mcp__echo__add", {"a": 1, "b": 1})
            results["add_seconds"] = time.monotonic() - started

        async with anyio.create_task_group() as tg:
            tg.start_soon(hang)
            await anyio.sleep(0.2)
            tg.start_soon(adds)

    run(f"{gateway_url}/mcp/agents/{agent.pk}", key_for(agent), work)
    assert text(results["add"]) == "2" and results["add_seconds"] < 1.5
    assert results["hang"].is_error and "did not answer" in text(results["hang"])
    assert recorded(tool="mcp__echo__hang").outcome == "timeout"


def test_it_calls_a_stdio_upstream_with_the_agents_env(gateway_url):
    McpServerFactory(
        name="Local", url="", transport_type="stdio",
        command=sys.executable, args=[str(PEERS / "echo_peer.py"), "stdio"],
        env={"PEER_TOKEN": "from-env"}, tools=ECHO_TOOLS,
    )  # fmt: skip
    agent = AgentFactory()

    async def work(client: Client) -> Any:
        return await client.call_tool("mcp__local__whoami", {})

    assert text(run(f"{gateway_url}/mcp/agents/{agent.pk}", key_for(agent), work)) == "from-env"


def _status(url: str, token: str) -> int:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream",
               "MCP-Protocol-Version": "2025-06-18"}  # fmt: skip
    return httpx2.post(url, json=body, headers=headers, timeout=10).status_code


def test_bad_revoked_expired_and_foreign_keys_are_refused(gateway_url):
    agent, other = AgentFactory(), AgentFactory()
    url = f"{gateway_url}/mcp/agents/{agent.pk}"
    good = key_for(agent)
    assert _status(url, good) == 200
    assert _status(url, "mcpa_" + "x" * 40) == 401
    assert _status(url, "not-a-jwt") == 401
    assert _status(url, key_for(other)) == 403
    assert _status(f"{gateway_url}/mcp/agents/999999", good) == 404
    AgentKey.objects.filter(agent=agent).update(expires_at="2000-01-01T00:00:00Z")
    assert _status(url, good) == 401
    revoked_key, revoked = agent_key_create(actor=None, agent=agent, name="r")
    agent_key_revoke(actor=None, key=revoked_key)
    assert _status(url, revoked) == 401


def test_the_owners_jwt_works_and_another_users_jwt_is_404(gateway_url):
    from mcpcontrol.api.jwt import jwt_pair_for

    agent = AgentFactory()
    url = f"{gateway_url}/mcp/agents/{agent.pk}"
    mine = str(jwt_pair_for(user=agent.owner, scopes=["read:servers"]).access_token)
    theirs = str(jwt_pair_for(user=AgentFactory().owner, scopes=["read:servers"]).access_token)
    assert _status(url, mine) == 200
    assert _status(url, theirs) == 404


def test_an_agent_configured_from_gateway_mode_reaches_its_tools(
    gateway_url, echo_peer, settings, make_client
):
    settings.MCPCONTROL_PUBLIC_URL = gateway_url
    echo_server(echo_peer)
    agent = AgentFactory()
    key = key_for(agent)
    api = make_client(agent.owner)
    config = api.get(f"/api/v1/agents/{agent.pk}/mcp-config?mode=gateway", HTTP_X_AGENT_KEY=key)
    [entry] = config.json()["mcpServers"].values()
    token = entry["headers"]["Authorization"].removeprefix("Bearer ")

    async def work(client: Client) -> Any:
        return await client.call_tool("mcp__echo__add", {"a": 40, "b": 2})

    assert text(run(entry["url"], token, work)) == "42"


def test_the_policy_hides_and_refuses_denied_tools(gateway_url, echo_peer):
    from gateway.services import agent_policy_set

    echo_server(echo_peer, alias="echo")
    agent = AgentFactory()
    agent_policy_set(actor=None, agent=agent, changes={"naming": "alias", "deny": ["*_hang"]})

    async def work(client: Client) -> Any:
        names = [t.name for t in (await client.list_tools()).tools]
        return names, await client.call_tool("echo_hang", {})

    names, refused = run(f"{gateway_url}/mcp/agents/{agent.pk}", key_for(agent), work)
    assert names == ["echo_whoami", "echo_add"]
    assert refused.is_error and "policy denies" in text(refused)
    assert recorded().outcome == "denied"


def test_a_changed_credential_is_presented_at_once_despite_the_pooled_session(
    gateway_url, echo_peer
):
    from credentials.models import Grant

    server = echo_server(echo_peer, auth_type="bearer")
    GrantFactory(server=server, secret="first")
    agent = AgentFactory()
    url, key = f"{gateway_url}/mcp/agents/{agent.pk}", key_for(agent)

    async def whoami(client: Client) -> str:
        return text(await client.call_tool("mcp__echo__whoami", {}))

    assert run(url, key, whoami) == "Bearer first"
    assert run(url, key, whoami) == "Bearer first"
    Grant.objects.all().delete()
    GrantFactory(server=server, secret="second")
    assert run(url, key, whoami) == "Bearer second"


def test_a_hanging_stdio_upstream_times_out_is_reaped_and_blocks_no_one(
    gateway_url, echo_peer, tmp_path
):
    import os

    pidfile = tmp_path / "hang.pid"
    McpServerFactory(
        name="Stuck", url="", transport_type="stdio", timeout_ms=1000, tools=[{"name": "x"}],
        command=sys.executable, args=[str(PEERS / "hang_peer.py"), str(pidfile)],
    )  # fmt: skip
    echo_server(echo_peer)
    agent = AgentFactory()
    results: dict[str, Any] = {}

    async def work(client: Client) -> None:
        async def stuck() -> None:
            results["stuck"] = await client.call_tool("mcp__stuck__x", {})

        async def add() -> None:
            await anyio.sleep(0.3)
            results["add"] = await client.call_tool("mcp__echo__add", {"a": 2, "b": 2})

        async with anyio.create_task_group() as tg:
            tg.start_soon(stuck)
            tg.start_soon(add)

    run(f"{gateway_url}/mcp/agents/{agent.pk}", key_for(agent), work)
    assert text(results["add"]) == "4"
    assert results["stuck"].is_error and "did not answer within 2s" in text(results["stuck"])
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the hung stdio upstream was left running")


def test_an_upstream_refusing_the_credential_says_where_to_reconnect(gateway_url):
    from tests.mcp_peers import sdk_peer_args, start_peer

    peer = start_peer(
        sdk_peer_args("streamable-http", "--require-header", "Authorization:Bearer right")
    )
    try:
        server = echo_server(peer, name="Guarded", auth_type="bearer", tools=[{"name": "echo"}])
        grant = GrantFactory(server=server, secret="wrong")
        agent = AgentFactory()
        url, key = f"{gateway_url}/mcp/agents/{agent.pk}", key_for(agent)

        async def call(client: Client) -> Any:
            return await client.call_tool("mcp__guarded__echo", {})

        refused = run(url, key, call)
        assert refused.is_error and "HTTP 401" in text(refused)
        assert f"reconnect at http://127.0.0.1:8000/admin/servers/mcpserver/{server.pk}/" in text(
            refused
        )
        assert recorded().outcome == "auth_required"
        grant.delete()
        GrantFactory(server=server, secret="right")
        assert text(run(url, key, call)) == "ok"
    finally:
        peer.stop()


def _guarded_peer() -> Any:
    from tests.mcp_peers import sdk_peer_args, start_peer

    return start_peer(
        sdk_peer_args("streamable-http", "--require-header", "Authorization:Bearer right")
    )


def test_an_upstream_refusal_marks_the_credential_until_it_is_replaced(gateway_url):
    """The upstream's 401 flags the agent's own grant (per_agent) through the credential
    port: audited once, shown on /me/, not presented again; a new key clears it."""
    from django.test import Client as Browser

    from audit.models import AuditEvent
    from credentials.models import Grant
    from servers.credential_port import credentials

    peer = _guarded_peer()
    try:
        server = echo_server(peer, name="Guarded", auth_type="bearer", tools=[{"name": "echo"}],
                             credential_mode=McpServer.CredentialMode.PER_AGENT)  # fmt: skip
        agent, bystander = AgentFactory(), AgentFactory()
        for who in (agent, bystander):
            AgentConnectionFactory(agent=who, server=server)
        GrantFactory(server=server, agent=agent, secret="wrong")
        GrantFactory(server=server, agent=bystander, secret="right")
        url, key = f"{gateway_url}/mcp/agents/{agent.pk}", key_for(agent)

        async def call(client: Client) -> Any:
            return await client.call_tool("mcp__guarded__echo", {})

        refused = run(url, key, call)
        assert refused.is_error and "marked as needing re-authorization" in text(refused)
        assert f"/me/agents/{agent.pk}/" in text(refused)
        grant = Grant.objects.get(server=server, agent=agent)
        assert grant.needs_reauth and "HTTP 401" in grant.reauth_reason
        assert not Grant.objects.get(server=server, agent=bystander).needs_reauth
        assert AuditEvent.objects.filter(action=AuditEvent.Action.NEEDS_REAUTH).count() == 1

        again = run(url, key, call)  # not presented again: refused before the upstream
        assert "needs re-authorization" in text(again)
        assert AuditEvent.objects.filter(action=AuditEvent.Action.NEEDS_REAUTH).count() == 1

        browser = Browser()
        browser.force_login(agent.owner)
        body = browser.get(f"/me/agents/{agent.pk}/").content.decode()
        assert "needs reconnecting: the gateway&#x27;s call was refused" in body

        credentials().store_secret(server=server, agent=agent, secret="right", actor=None)
        assert text(run(url, key, call)) == "ok"
    finally:
        peer.stop()


def test_a_credential_stored_after_the_call_began_is_not_blamed():
    from datetime import timedelta

    from django.utils import timezone

    from credentials.models import Grant
    from gateway.services.catalog import credential_refused

    server = McpServerFactory(auth_type="bearer")
    grant = GrantFactory(server=server, secret="new")
    agent = AgentFactory()
    before = timezone.now() - timedelta(seconds=5)
    assert not credential_refused(agent=agent, server_id=server.pk, reason="HTTP 401",
                                  presented_at=before)  # fmt: skip
    assert not Grant.objects.get(pk=grant.pk).needs_reauth
    assert credential_refused(agent=agent, server_id=server.pk, reason="HTTP 401",
                              presented_at=timezone.now())  # fmt: skip
    assert Grant.objects.get(pk=grant.pk).needs_reauth


def test_buffered_tool_calls_are_written_when_the_gateway_stops(transactional_db, echo_peer):
    import asyncio
    import socket
    import threading

    import uvicorn

    from gateway.api import mcp as endpoint
    from mcpcontrol.asgi import application

    echo_server(echo_peer)
    agent = AgentFactory()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(application, log_level="warning", lifespan="on"))
    original, endpoint.FLUSH_SECONDS = endpoint.FLUSH_SECONDS, 3600.0  # no periodic flush
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])))
    try:
        thread.start()
        while not server.started:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/mcp/agents/{agent.pk}"

        async def add(client: Client) -> Any:
            return await client.call_tool("mcp__echo__add", {"a": 1, "b": 1})

        assert text(run(url, key_for(agent), add)) == "2"
        time.sleep(1.5)
        assert not ToolCall.objects.exists()  # still buffered
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()
        endpoint.FLUSH_SECONDS = original
    assert ToolCall.objects.get().outcome == "ok"
