"""Long-lived connections to the gateway (gateway.api.streams): the legacy SSE pair through the
SDK's SSE client, and tools/list_changed on open streams, against the real echo peer."""

import asyncio
import json
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
import uvicorn
from django.db import OperationalError
from django.utils import timezone
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.subscriptions import ToolsListChanged

from gateway.api import streams
from gateway.services import agent_key_create, agent_key_revoke
from servers.models import McpServer
from servers.services import server_set_enabled
from tests.factories import AgentFactory, McpServerFactory

pytestmark = pytest.mark.django_db(transaction=True)

ECHO_TOOLS = [{"name": "whoami"}, {"name": "add"}, {"name": "hang"}]
WAIT = 20.0  # generous: the machine is loaded; the poll runs every 0.2 s here


@pytest.fixture(autouse=True)
def fast_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(streams, "POLL_SECONDS", 0.2)


def echo_server(peer: Any, **fields: Any) -> McpServer:
    fields.setdefault("name", "Echo")
    fields.setdefault("tools", ECHO_TOOLS)
    return McpServerFactory(url=f"http://127.0.0.1:{peer.port}/mcp", **fields)


def retried(change: Callable[[], Any]) -> None:
    """Run a database change from the test, as the console would. The test database is
    SQLite's shared in-memory one: a table the gateway's poll is reading is locked (no busy
    wait there), so a refused write is retried."""
    deadline = time.monotonic() + WAIT
    while True:
        try:
            change()
            return
        except OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


async def write(change: Callable[[], Any]) -> None:
    await anyio.to_thread.run_sync(retried, change)


def key_for(agent: Any) -> str:
    return agent_key_create(actor=None, agent=agent, name="test")[1]


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class Seen:
    """The notifications a client received."""

    def __init__(self) -> None:
        self.changed = 0

    async def __call__(self, message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            self.changed += 1

    async def until_changed(self, count: int = 1) -> float:
        started = time.monotonic()
        with anyio.fail_after(WAIT):
            while self.changed < count:
                await anyio.sleep(0.05)
        return time.monotonic() - started


def sse(url: str, key: str, work: Callable[[Client, Seen], Awaitable[Any]]) -> Any:
    seen = Seen()

    async def main() -> Any:
        transport = sse_client(f"{url}/sse", headers=auth(key))
        async with Client(transport, mode="legacy", message_handler=seen) as client:
            return await work(client, seen)

    return anyio.run(main)


def test_the_sse_pair_lists_and_calls_through_the_same_server(gateway_url, echo_peer):
    echo_server(echo_peer)
    agent = AgentFactory()
    url = f"{gateway_url}/mcp/agents/{agent.pk}"

    async def work(client: Client, seen: Seen) -> Any:
        tools = await client.list_tools()
        added = await client.call_tool("mcp__echo__add", {"a": 2, "b": 3})
        return client.server_capabilities, [t.name for t in tools.tools], added

    capabilities, names, added = sse(url, key_for(agent), work)
    assert names == ["mcp__echo__whoami", "mcp__echo__add", "mcp__echo__hang"]
    assert added.content[0].text == "5" and not added.is_error
    assert capabilities.tools is not None and capabilities.tools.list_changed


def test_the_sse_stream_needs_a_usable_key(gateway_url):
    agent, other = AgentFactory(), AgentFactory()
    url = f"{gateway_url}/mcp/agents/{agent.pk}/sse"
    with httpx2.Client(timeout=10) as http:
        assert http.get(url).status_code == 401
        assert http.get(url, headers=auth("mcpa_" + "x" * 43)).status_code == 401
        assert http.get(url, headers=auth(key_for(other))).status_code == 403


def _open_session(url: str, key: str) -> tuple[Any, str]:
    """Open the SSE stream by hand; the POST URL its first event names."""
    http = httpx2.Client(timeout=10)
    stream = http.stream("GET", f"{url}/sse", headers=auth(key))
    response = stream.__enter__()
    assert response.status_code == 200
    lines = response.iter_lines()
    for line in lines:
        if line.startswith("data: "):
            return (http, stream, lines), line[len("data: ") :]  # a dropped iterator closes
    raise AssertionError("no endpoint event")


INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                         "clientInfo": {"name": "t", "version": "1"}}}  # fmt: skip


def test_each_post_is_authenticated_and_bound_to_its_agent(gateway_url):
    ann, bob = AgentFactory(), AgentFactory()
    ann_key, bob_key = key_for(ann), key_for(bob)
    ann_url = f"{gateway_url}/mcp/agents/{ann.pk}"
    held, endpoint = _open_session(ann_url, ann_key)
    try:
        assert endpoint.startswith(f"/mcp/agents/{ann.pk}/messages?session_id=")
        post = f"{gateway_url}{endpoint}"
        with httpx2.Client(timeout=10) as http:
            first = http.post(post, json=INITIALIZE, headers=auth(ann_key))
            assert first.status_code == 202, first.text
            assert http.post(post, json=INITIALIZE).status_code == 401
            # Bob's key on Ann's URL: another agent's key.
            assert http.post(post, json=INITIALIZE, headers=auth(bob_key)).status_code == 403
            # Bob on his own URL with Ann's session: no such session for him.
            stolen = post.replace(f"/agents/{ann.pk}/", f"/agents/{bob.pk}/")
            assert http.post(stolen, json=INITIALIZE, headers=auth(bob_key)).status_code == 404
            # A revoked key's POST is refused, on an open session.
            retried(lambda: agent_key_revoke(actor=None, key=ann.gateway_keys.get()))
            assert http.post(post, json=INITIALIZE, headers=auth(ann_key)).status_code == 401
    finally:
        http_client, stream, _ = held
        stream.__exit__(None, None, None)
        http_client.close()


def test_an_sse_client_is_told_when_a_server_is_disabled(gateway_url, echo_peer):
    server = echo_server(echo_peer)
    agent = AgentFactory()
    url = f"{gateway_url}/mcp/agents/{agent.pk}"

    async def work(client: Client, seen: Seen) -> Any:
        before = [t.name for t in (await client.list_tools()).tools]
        await write(lambda: server_set_enabled(actor=None, server=server, enabled=False))
        await seen.until_changed()
        return before, [t.name for t in (await client.list_tools()).tools]

    before, after = sse(url, key_for(agent), work)
    assert len(before) == 3 and after == []


def test_nothing_is_sent_when_the_offered_tools_did_not_change(gateway_url, echo_peer):
    server = echo_server(echo_peer)
    other = McpServerFactory(name="Other", tools=[{"name": "x"}], is_enabled=False)
    agent = AgentFactory()
    url = f"{gateway_url}/mcp/agents/{agent.pk}"

    def irrelevant() -> None:
        # The health engine re-syncs the same tools; a disabled server's tools change.
        now = timezone.now()
        McpServer.objects.filter(pk=server.pk).update(tools=ECHO_TOOLS, tools_last_synced_at=now,
                                                      updated_at=now)  # fmt: skip
        McpServer.objects.filter(pk=other.pk).update(tools=[{"name": "y"}], updated_at=now)

    def relevant() -> None:
        now = timezone.now()
        tools = [*ECHO_TOOLS, {"name": "mul"}]
        McpServer.objects.filter(pk=server.pk).update(tools=tools, tools_last_synced_at=now,
                                                      updated_at=now)  # fmt: skip

    async def work(client: Client, seen: Seen) -> Any:
        await client.list_tools()
        await write(irrelevant)
        await anyio.sleep(2.0)  # ten polls
        quiet = seen.changed
        await write(relevant)
        await seen.until_changed()
        return quiet, [t.name for t in (await client.list_tools()).tools]

    quiet, names = sse(url, key_for(agent), work)
    assert quiet == 0
    assert "mcp__echo__mul" in names


def test_a_streamable_http_client_listens_for_changes(gateway_url, echo_peer):
    """2026-07-28 clients: subscriptions/listen on the stateless endpoint (no session)."""
    server = echo_server(echo_peer)
    agent = AgentFactory()
    url, key = f"{gateway_url}/mcp/agents/{agent.pk}", key_for(agent)

    async def main() -> list[str]:
        http = httpx2.AsyncClient(headers=auth(key), timeout=30)
        async with http, Client(streamable_http_client(url, http_client=http)) as client:
            async with client.listen(tools_list_changed=True) as subscription:
                await write(lambda: server_set_enabled(actor=None, server=server, enabled=False))
                with anyio.fail_after(WAIT):
                    event = await subscription.__anext__()
                assert isinstance(event, ToolsListChanged)
            return [t.name for t in (await client.list_tools()).tools]

    assert anyio.run(main) == []


def test_a_legacy_streamable_http_client_is_told_on_its_get_stream(gateway_url, echo_peer):
    """Handshake-era clients: the standalone GET stream of the stateless endpoint."""
    server = echo_server(echo_peer)
    agent = AgentFactory()
    url, key = f"{gateway_url}/mcp/agents/{agent.pk}", key_for(agent)
    seen = Seen()

    async def main() -> list[str]:
        http = httpx2.AsyncClient(headers=auth(key), timeout=30)
        transport = streamable_http_client(url, http_client=http)
        async with http, Client(transport, mode="legacy", message_handler=seen) as client:
            assert client.server_capabilities.tools.list_changed
            await client.list_tools()
            await anyio.sleep(0.5)  # the client opens its GET stream after initializing
            await write(lambda: server_set_enabled(actor=None, server=server, enabled=False))
            await seen.until_changed()
            return [t.name for t in (await client.list_tools()).tools]

    assert anyio.run(main) == []


@pytest.fixture
def sibling_url(gateway_url: str) -> Iterator[str]:
    """A second gateway in this process, as a second gunicorn worker would be: its own
    sessions, its own relay socket."""
    from gateway.api.mcp import Gateway

    sibling = Gateway()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await sibling.lifespan(scope, receive, send)
        else:
            await sibling(scope, receive, send)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])),
                              daemon=True)  # fmt: skip
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the sibling gateway did not start"
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def test_a_post_reaching_another_worker_is_relayed_to_the_sessions_owner(gateway_url, sibling_url):
    agent = AgentFactory()
    key = key_for(agent)
    held, endpoint = _open_session(f"{gateway_url}/mcp/agents/{agent.pk}", key)
    try:
        with httpx2.Client(timeout=10) as http:
            relayed = http.post(f"{sibling_url}{endpoint}", json=INITIALIZE, headers=auth(key))
            assert relayed.status_code == 202, relayed.text
            unknown = endpoint.split("session_id=")[0] + "session_id=" + "0" * 32
            assert http.post(f"{sibling_url}{unknown}", json=INITIALIZE,
                             headers=auth(key)).status_code == 404  # fmt: skip
            assert http.post(f"{sibling_url}{endpoint}", json=INITIALIZE).status_code == 401
        # The answer comes on the stream held by the first gateway.
        _, _, lines = held
        data = next(line for line in lines if line.startswith("data: "))
        answer = json.loads(data[len("data: ") :])
        assert answer["id"] == 1 and answer["result"]["serverInfo"]["name"] == "mcpcontrol-gateway"
    finally:
        http_client, stream, _ = held
        stream.__exit__(None, None, None)
        http_client.close()
