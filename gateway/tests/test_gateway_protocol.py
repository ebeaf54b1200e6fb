"""The rest of the MCP protocol through the gateway (issue 14): tools/list pagination,
resources and prompts aggregated across upstreams, ping, progress and cancellation.

The SDK's client talks to the gateway (uvicorn on 127.0.0.1, conftest.gateway_url), which
talks to real echo peers (tests/peers/echo_peer.py) started with --stream, so they answer
with SSE when they report progress and see their callers close the stream.
"""

import socket
import sys
import time
from collections.abc import Iterator
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS

from gateway.models import AgentPolicy
from gateway.services import agent_key_create
from gateway.tests.test_gateway_mcp import ECHO_TOOLS, run, text
from servers.models import McpServer
from tests.factories import AgentFactory, McpServerFactory
from tests.mcp_peers import PEERS, Peer, start_peer

pytestmark = pytest.mark.django_db(transaction=True)

SLOW_TOOLS = [*ECHO_TOOLS, {"name": "slow"}, {"name": "cancelled"}]


def _peer(name: str, *extra: str) -> Peer:
    args = [sys.executable, str(PEERS / "echo_peer.py"), "streamable-http", "--stream"]
    return start_peer([*args, "--name", name, *extra])


@pytest.fixture
def alpha() -> Iterator[Peer]:
    peer = _peer("alpha")
    try:
        yield peer
    finally:
        peer.stop()


@pytest.fixture
def beta() -> Iterator[Peer]:
    peer = _peer("beta")
    try:
        yield peer
    finally:
        peer.stop()


def upstream(peer: Peer | None, name: str, **fields: Any) -> McpServer:
    port = peer.port if peer is not None else _closed_port()
    fields.setdefault("tools", SLOW_TOOLS)
    return McpServerFactory(name=name, url=f"http://127.0.0.1:{port}/mcp", **fields)


def _closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def endpoint(gateway_url: str, agent: Any) -> tuple[str, str]:
    return f"{gateway_url}/mcp/agents/{agent.pk}", agent_key_create(
        actor=None, agent=agent, name="test"
    )[1]


def test_resources_and_prompts_of_two_upstreams_carry_their_prefixes(gateway_url, alpha, beta):
    upstream(alpha, "Alpha")
    upstream(beta, "Beta")
    url, key = endpoint(gateway_url, AgentFactory())

    async def work(client: Client) -> dict[str, Any]:
        return {
            "resources": [(str(r.uri), r.name) for r in (await client.list_resources()).resources],
            "templates": [
                t.uri_template for t in (await client.list_resource_templates()).resource_templates
            ],
            "readme": await client.read_resource("mcpcontrol://beta/note://beta/readme"),
            "item": await client.read_resource("mcpcontrol://alpha/note://alpha/items/7"),
            "prompts": [p.name for p in (await client.list_prompts()).prompts],
            "greet": await client.get_prompt("mcp__beta__greet", {"who": "ann"}),
        }

    got = run(url, key, work)
    assert got["resources"] == [
        ("mcpcontrol://alpha/note://alpha/readme", "mcp__alpha__readme"),
        ("mcpcontrol://beta/note://beta/readme", "mcp__beta__readme"),
    ]
    assert got["templates"] == [
        "mcpcontrol://alpha/note://alpha/items/{id}",
        "mcpcontrol://beta/note://beta/items/{id}",
    ]
    [readme] = got["readme"].contents
    assert (readme.text, str(readme.uri)) == (
        "readme of beta",
        "mcpcontrol://beta/note://beta/readme",
    )
    assert got["item"].contents[0].text == "item 7 of alpha"
    assert got["prompts"] == ["mcp__alpha__greet", "mcp__beta__greet"]
    assert got["greet"].messages[0].content.text == "hello ann from beta"


@pytest.mark.filterwarnings("ignore:ping is removed")
def test_a_handshake_era_client_pings_and_lists_prompts(gateway_url, alpha):
    """ping is gone from 2026-07-28; a client of the earlier revisions still sends it."""
    upstream(alpha, "Alpha")
    url, key = endpoint(gateway_url, AgentFactory())

    async def work() -> Any:
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30)
        transport = streamable_http_client(url, http_client=http)
        async with http, Client(transport, mode="legacy") as client:
            return await client.send_ping(), (await client.list_prompts()).prompts

    pong, prompts = anyio.run(work)
    assert pong is not None and [p.name for p in prompts] == ["mcp__alpha__greet"]


def test_unknown_names_and_uris_are_invalid_params(gateway_url, alpha):
    upstream(alpha, "Alpha")
    url, key = endpoint(gateway_url, AgentFactory())

    async def attempt(client: Client, call: Any) -> MCPError:
        with pytest.raises(MCPError) as caught:
            await call(client)
        return caught.value

    async def work(client: Client) -> list[MCPError]:
        return [
            await attempt(client, lambda c: c.get_prompt("mcp__nobody__greet")),
            await attempt(client, lambda c: c.read_resource("note://alpha/readme")),
            await attempt(client, lambda c: c.read_resource("mcpcontrol://nobody/note://x")),
            await attempt(client, lambda c: c.list_tools(cursor="not a cursor")),
        ]

    errors = run(url, key, work)
    assert [e.code for e in errors] == [INVALID_PARAMS] * 4
    assert "invalid cursor" in errors[3].message


def test_an_upstream_the_agent_may_not_reach_is_left_out_of_the_lists(gateway_url, alpha):
    upstream(alpha, "Alpha")
    upstream(None, "Down")  # nothing listens there
    url, key = endpoint(gateway_url, AgentFactory())

    async def work(client: Client) -> Any:
        started = time.monotonic()
        prompts = [p.name for p in (await client.list_prompts()).prompts]
        resources = [str(r.uri) for r in (await client.list_resources()).resources]
        with pytest.raises(MCPError) as caught:
            await client.get_prompt("mcp__down__greet")
        return prompts, resources, caught.value, time.monotonic() - started

    prompts, resources, error, seconds = run(url, key, work)
    assert prompts == ["mcp__alpha__greet"]
    assert resources == ["mcpcontrol://alpha/note://alpha/readme"]
    assert error.message.startswith("Down: ")  # the failing server, by name
    assert seconds < 20


def test_the_policy_hides_a_prompt_and_the_naming_applies(gateway_url, alpha, beta):
    upstream(alpha, "Alpha", alias="a")
    upstream(beta, "Beta", alias="b")
    agent = AgentFactory()
    AgentPolicy.objects.create(agent=agent, naming="alias", deny=["a_greet", "mcpcontrol://beta/*"])
    url, key = endpoint(gateway_url, agent)

    async def work(client: Client) -> Any:
        prompts = [p.name for p in (await client.list_prompts()).prompts]
        resources = [str(r.uri) for r in (await client.list_resources()).resources]
        with pytest.raises(MCPError) as denied:
            await client.get_prompt("a_greet")
        with pytest.raises(MCPError) as hidden:
            await client.read_resource("mcpcontrol://beta/note://beta/readme")
        greet = await client.get_prompt("b_greet", {"who": "bo"})
        return prompts, resources, denied.value, hidden.value, greet

    prompts, resources, denied, hidden, greet = run(url, key, work)
    assert prompts == ["b_greet"]
    assert resources == ["mcpcontrol://alpha/note://alpha/readme"]
    assert denied.code == hidden.code == INVALID_PARAMS
    assert greet.messages[0].content.text == "hello bo from beta"


def test_a_cursor_walk_returns_every_tool_once(gateway_url, settings):
    settings.MCPCONTROL_GATEWAY_PAGE_SIZE = 40
    peer = _peer("many", "--tools", "250")
    try:
        upstream(peer, "Many", tools=[{"name": f"t{i:04d}"} for i in range(250)])
        url, key = endpoint(gateway_url, AgentFactory())

        async def work(client: Client) -> Any:
            names: list[str] = []
            pages, cursor = 0, None
            while True:
                listed = await client.list_tools(cursor=cursor)
                names += [t.name for t in listed.tools]
                pages += 1
                cursor = listed.next_cursor
                if cursor is None:
                    return names, pages, await client.call_tool("mcp__many__t0249")

        names, pages, called = run(url, key, work)
    finally:
        peer.stop()
    assert names == [f"mcp__many__t{i:04d}" for i in range(250)]
    assert pages == 7  # 6 pages of 40, one of 10
    assert text(called) == "t0249"


def test_progress_is_relayed_from_the_upstream(gateway_url, alpha):
    upstream(alpha, "Alpha")
    url, key = endpoint(gateway_url, AgentFactory())
    seen: list[tuple[float, float | None, str | None]] = []

    async def progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async def work(client: Client) -> Any:
        return await client.call_tool("mcp__alpha__slow", {"steps": 3}, progress_callback=progress)

    result = run(url, key, work)
    assert text(result) == "done after 3 steps" and not result.is_error
    assert seen == [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")]


def test_progress_is_relayed_to_a_handshake_era_client(gateway_url, alpha):
    upstream(alpha, "Alpha")
    url, key = endpoint(gateway_url, AgentFactory())
    seen: list[float] = []

    async def progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    async def work() -> Any:
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30)
        transport = streamable_http_client(url, http_client=http)
        async with http, Client(transport, mode="legacy") as client:
            slow = await client.call_tool(
                "mcp__alpha__slow", {"steps": 2}, progress_callback=progress
            )
            plain = await client.call_tool("mcp__alpha__add", {"a": 1, "b": 2})
            return slow, plain

    slow, plain = anyio.run(work)
    assert text(slow) == "done after 2 steps" and seen == [1, 2]
    assert text(plain) == "3"


def test_with_streaming_off_a_call_answers_json_without_progress(gateway_url, alpha, settings):
    settings.MCPCONTROL_GATEWAY_STREAMING = False
    upstream(alpha, "Alpha")
    url, key = endpoint(gateway_url, AgentFactory())
    seen: list[float] = []

    async def progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    async def work(client: Client) -> Any:
        return await client.call_tool(
            "mcp__alpha__slow", {"steps": 2, "pause": 0.05}, progress_callback=progress
        )

    assert text(run(url, key, work)) == "done after 2 steps"
    assert seen == []  # a JSON answer has nowhere to carry progress


def test_a_call_without_a_progress_token_answers_plain_json(gateway_url, alpha):
    upstream(alpha, "Alpha")
    url, key = endpoint(gateway_url, AgentFactory())

    async def work(client: Client) -> Any:
        return await client.call_tool("mcp__alpha__slow", {"steps": 2, "pause": 0.05})

    assert text(run(url, key, work)) == "done after 2 steps"


def test_a_client_cancellation_reaches_the_upstream(gateway_url, alpha):
    upstream(alpha, "Alpha")
    url, key = endpoint(gateway_url, AgentFactory())

    async def work(client: Client) -> str:
        started = anyio.Event()

        async def progress(progress: float, total: float | None, message: str | None) -> None:
            started.set()

        async def slow_call() -> None:
            await client.call_tool(
                "mcp__alpha__slow", {"steps": 100, "pause": 0.2}, progress_callback=progress
            )

        async with anyio.create_task_group() as tg:
            tg.start_soon(slow_call)
            with anyio.fail_after(15):
                await started.wait()
            tg.cancel_scope.cancel()  # the client gives up: its POST's stream closes
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            count = text(await client.call_tool("mcp__alpha__cancelled"))
            if count != "0":
                return count
            await anyio.sleep(0.2)
        return "0"

    assert run(url, key, work) == "1"


def test_a_stdio_upstream_lists_and_a_hanging_one_is_left_out(gateway_url, alpha, tmp_path):
    upstream(alpha, "Alpha")
    McpServerFactory(
        name="Local", url="", transport_type="stdio", tools=[],
        command=sys.executable, args=[str(PEERS / "echo_peer.py"), "stdio"],
    )  # fmt: skip
    McpServerFactory(
        name="Stuck", url="", transport_type="stdio", timeout_ms=1000, tools=[],
        command=sys.executable, args=[str(PEERS / "hang_peer.py"), str(tmp_path / "hang.pid")],
    )  # fmt: skip
    url, key = endpoint(gateway_url, AgentFactory())

    async def work(client: Client) -> Any:
        started = time.monotonic()
        prompts = [p.name for p in (await client.list_prompts()).prompts]
        seconds = time.monotonic() - started
        greet = await client.get_prompt("mcp__local__greet", {"who": "stdio"})
        return prompts, seconds, greet

    prompts, seconds, greet = run(url, key, work)
    assert prompts == ["mcp__alpha__greet", "mcp__local__greet"]
    assert seconds < 15  # the hanging server costs its own timeout (2 s), not the list
    assert greet.messages[0].content.text == "hello stdio from echo"
