"""The gateway's upstream side, through the endpoint (the SDK's client → /mcp/agents/{id} →
upstream), against real peers: SSE and websocket upstreams, an OAuth upstream whose token
is refreshed between two calls of one client session, and the pool of stdio processes."""

import asyncio
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import anyio
import pytest
from django.utils import timezone
from mcp import Client

from credentials.models import Grant
from credentials.services import variables_set
from credentials.tests.conftest import connect
from gateway.tests.test_gateway_mcp import ECHO_TOOLS, key_for, recorded, run, text
from servers.models import McpServer
from tests.factories import (
    AdminFactory,
    AgentConnectionFactory,
    AgentFactory,
    GrantFactory,
    McpServerFactory,
)
from tests.mcp_peers import PEERS, Peer, start_peer
from tests.peers.oauth_server import run_oauth_peers

pytestmark = pytest.mark.django_db(transaction=True)

ECHO_TOOLS_WITH_PID = [*ECHO_TOOLS, {"name": "pid"}, {"name": "sleep"}]


def _pool() -> Any:
    from mcpcontrol.asgi import gateway

    assert gateway.sessions is not None, "the gateway is not serving"
    return gateway.sessions


def _gone(pid: int, within: float = 10.0) -> bool:
    """True once `pid` no longer exists (killed and reaped), waiting at most `within` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def _call(gateway_url: str, agent: Any, tool: str, args: dict[str, Any] | None = None) -> Any:
    """One tools/call in a client session of its own (a separate request to the gateway)."""

    async def work(client: Client) -> Any:
        return await client.call_tool(tool, args or {})

    return run(f"{gateway_url}/mcp/agents/{agent.pk}", key_for(agent), work)


# --- SSE and websocket upstreams ---------------------------------------------------------


@pytest.fixture(params=["sse", "websocket"])
def remote_echo(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """(transport, URL) of the echo peer served over SSE or websocket."""
    peer: Peer = start_peer([sys.executable, str(PEERS / "echo_peer.py"), request.param])
    path = "/sse" if request.param == "sse" else "/"
    scheme = "http" if request.param == "sse" else "ws"
    try:
        yield request.param, f"{scheme}://127.0.0.1:{peer.port}{path}"
    finally:
        peer.stop()


def test_sse_and_websocket_upstreams_get_each_agents_credential(gateway_url, remote_echo):
    transport, url = remote_echo
    server = McpServerFactory(
        name="Echo", url=url, transport_type=transport, tools=ECHO_TOOLS, auth_type="bearer",
        credential_mode=McpServer.CredentialMode.PER_AGENT,
    )  # fmt: skip
    ann, bob = AgentFactory(), AgentFactory()
    for agent, secret in ((ann, "ann-secret"), (bob, "bob-secret")):
        AgentConnectionFactory(agent=agent, server=server)
        GrantFactory(server=server, agent=agent, secret=secret)

    async def work(client: Client) -> list[str]:
        names = [t.name for t in (await client.list_tools()).tools]
        added = await client.call_tool("mcp__echo__add", {"a": 20, "b": 22})
        whoami = [text(await client.call_tool("mcp__echo__whoami", {})) for _ in range(2)]
        return [*names, text(added), *whoami]

    ann_seen = run(f"{gateway_url}/mcp/agents/{ann.pk}", key_for(ann), work)
    bob_seen = run(f"{gateway_url}/mcp/agents/{bob.pk}", key_for(bob), work)
    names = ["mcp__echo__whoami", "mcp__echo__add", "mcp__echo__hang"]
    assert ann_seen == [*names, "42", "Bearer ann-secret", "Bearer ann-secret"]
    assert bob_seen == [*names, "42", "Bearer bob-secret", "Bearer bob-secret"]
    # One pooled upstream session per credential, kept for the calls after the first.
    assert len(_pool().held) == 2
    assert recorded(tool="mcp__echo__add", agent=ann).outcome == "ok"


def test_a_hanging_remote_call_times_out_and_the_session_serves_the_next(gateway_url, remote_echo):
    transport, url = remote_echo
    McpServerFactory(name="Echo", url=url, transport_type=transport, tools=ECHO_TOOLS,
                     timeout_ms=1000)  # fmt: skip
    agent = AgentFactory()
    hung = _call(gateway_url, agent, "mcp__echo__hang")
    assert hung.is_error and "did not answer within 2s" in text(hung)
    assert text(_call(gateway_url, agent, "mcp__echo__add", {"a": 1, "b": 2})) == "3"


# --- An OAuth upstream refreshed mid-session ---------------------------------------------


def test_an_oauth_token_due_within_five_minutes_is_refreshed_and_presented(gateway_url):
    with run_oauth_peers() as peers:
        server = McpServerFactory(name="Protected", url=peers.mcp_url, auth_type="oauth",
                                  tools=[{"name": "echo"}])  # fmt: skip
        assert connect(server=server, user=AdminFactory()).status_code == 200
        first = Grant.objects.get(server=server).secret.reveal()
        agent = AgentFactory()

        def age() -> None:  # the grant now expires in 2 minutes: due (5-minute freshness)
            Grant.objects.filter(server=server).update(
                expires_at=timezone.now() + timedelta(minutes=2)
            )

        async def work(client: Client) -> list[str]:
            one = await client.call_tool("mcp__protected__echo", {"text": "one"})
            await anyio.to_thread.run_sync(age)
            two = await client.call_tool("mcp__protected__echo", {"text": "two"})
            return [text(one), text(two)]

        assert run(f"{gateway_url}/mcp/agents/{agent.pk}", key_for(agent), work) == ["one", "two"]
        grant = Grant.objects.get(server=server)
        second = grant.secret.reveal()
        assert second != first and grant.expires_at > timezone.now() + timedelta(minutes=30)
        assert peers.provider.token_calls["refresh_token"] == 1
        # The upstream was sent the first token, then (from the refreshing call on) the new one.
        assert peers.provider.presented[0] == first
        assert peers.provider.presented[-1] == second
        assert first not in peers.provider.presented[peers.provider.presented.index(second) :]


# --- The stdio process pool --------------------------------------------------------------


def stdio_echo(**fields: Any) -> McpServer:
    fields.setdefault("name", "Local")
    return McpServerFactory(
        url="", transport_type="stdio", command=sys.executable,
        args=[str(PEERS / "echo_peer.py"), "stdio"], tools=ECHO_TOOLS_WITH_PID, **fields,
    )  # fmt: skip


def test_calls_reuse_one_stdio_process(gateway_url):
    stdio_echo()
    agent = AgentFactory()
    pids = {text(_call(gateway_url, agent, "mcp__local__pid")) for _ in range(3)}
    assert len(pids) == 1
    assert text(_call(gateway_url, agent, "mcp__local__add", {"a": 1, "b": 1})) == "2"
    assert recorded(tool="mcp__local__add").outcome == "ok"


def test_concurrent_calls_use_at_most_the_configured_processes(gateway_url, settings):
    settings.MCPCONTROL_GATEWAY_STDIO_PROCESSES = 2
    stdio_echo(timeout_ms=20000)
    agent = AgentFactory()
    answers: list[str] = []

    async def work(client: Client) -> None:
        async def one() -> None:
            result = await client.call_tool("mcp__local__sleep", {"seconds": 1})
            answers.append(text(result))

        async with anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(one)

    started = time.monotonic()
    run(f"{gateway_url}/mcp/agents/{agent.pk}", key_for(agent), work)
    # Four one-second calls, two processes: the last two waited for a process.
    assert len(answers) == 4 and len(set(answers)) == 2
    assert time.monotonic() - started >= 1.9


def test_a_crashed_stdio_process_is_replaced(gateway_url):
    stdio_echo()
    agent = AgentFactory()
    first = int(text(_call(gateway_url, agent, "mcp__local__pid")))
    os.kill(first, signal.SIGKILL)
    assert _gone(first)
    time.sleep(0.3)  # the gateway's event loop notes the exit
    result = _call(gateway_url, agent, "mcp__local__pid")
    assert not result.is_error, text(result)
    assert int(text(result)) != first


def test_an_idle_stdio_process_is_killed(gateway_url, settings):
    settings.MCPCONTROL_GATEWAY_IDLE_SECONDS = 1
    stdio_echo()
    agent = AgentFactory()
    pid = int(text(_call(gateway_url, agent, "mcp__local__pid")))
    assert _gone(pid), "the idle stdio process was left running"
    deadline = time.monotonic() + 5
    while _pool().held and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _pool().held and not _pool().slots
    assert int(text(_call(gateway_url, agent, "mcp__local__pid"))) != pid


def test_agents_with_different_env_never_share_a_stdio_process(gateway_url):
    server = stdio_echo(env={"PEER_TOKEN": "${TOKEN}"},
                        custom_user_vars={"TOKEN": {"title": "Token"}})  # fmt: skip
    ann, bob = AgentFactory(), AgentFactory()
    for agent in (ann, bob):
        variables_set(server=server, values={"TOKEN": f"{agent.pk}-token"}, actor=None,
                      agent=agent)  # fmt: skip
    seen = {}
    for agent in (ann, bob, ann, bob):
        whoami = text(_call(gateway_url, agent, "mcp__local__whoami"))
        pid = text(_call(gateway_url, agent, "mcp__local__pid"))
        seen.setdefault(agent.pk, set()).add((whoami, pid))
    [(ann_token, ann_pid)], [(bob_token, bob_pid)] = seen[ann.pk], seen[bob.pk]
    assert (ann_token, bob_token) == (f"{ann.pk}-token", f"{bob.pk}-token")
    assert ann_pid != bob_pid
    assert len(_pool().held) == 2


def test_a_hanging_stdio_call_times_out_and_its_process_is_killed(gateway_url):
    server = stdio_echo()  # the default timeout: a Python peer takes seconds to start here
    agent = AgentFactory()
    pid = int(text(_call(gateway_url, agent, "mcp__local__pid")))
    server.timeout_ms = 1000
    server.save()
    hung = _call(gateway_url, agent, "mcp__local__hang")  # served by the same, idle process
    assert hung.is_error and "did not answer within 2s" in text(hung)
    assert recorded(tool="mcp__local__hang").outcome == "timeout"
    assert _gone(pid), "the hung stdio process was left running"
    server.timeout_ms = 30000  # time for a new process to start
    server.save()
    assert int(text(_call(gateway_url, agent, "mcp__local__pid"))) != pid


@contextmanager
def _serving() -> Iterator[Callable[[], str]]:
    """The gateway under uvicorn, stopped (lifespan shutdown) when the block ends."""
    import uvicorn

    from mcpcontrol.asgi import application

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(application, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])))
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started, "the gateway did not start"
        yield lambda: f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()


def test_stdio_processes_are_killed_when_the_gateway_stops(transactional_db):
    stdio_echo()
    agent = AgentFactory()
    with _serving() as url:
        pid = int(text(_call(url(), agent, "mcp__local__pid")))
        assert not _gone(pid, within=0.5)  # kept between calls
    assert _gone(pid), "a pooled stdio process outlived the gateway"
