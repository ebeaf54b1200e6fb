"""server_check against real peers: one MCP session per check, distinct outcomes."""

import time
from pathlib import Path

import anyio
import pytest
from django.contrib.auth import get_user_model

from credentials.models import Grant
from servers import services
from servers.mcp_client import ProbeResult, SharedPool, Target, probe
from servers.models import Agent, AgentConnection, McpServer
from tests.mcp_peers import stdio_fields

# What a loaded 2-core machine adds to a 1 s timeout before the check returns (seen: 0.28 s
# with seven other jobs running). A check that ignored its timeout would hang for the peer's
# lifetime (minutes), so this margin still fails it.
SCHEDULING_SLACK_S = 1.0

HTTP = McpServer.Transport.STREAMABLE_HTTP
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _own_cache(private_cache: None) -> None:
    pass


def check(server: McpServer) -> services.CheckResult:
    result = services.server_check(server_id=server.id)
    assert result is not None
    server.refresh_from_db()
    return result


def test_it_lists_every_tool_page_over_streamable_http(make_server, sdk_http_url) -> None:
    server = make_server(transport_type=HTTP, url=sdk_http_url)

    result = check(server)

    assert result.outcome == "healthy"
    assert [t["name"] for t in server.tools] == ["add", "echo", "time"]  # 2 pages of 2
    assert server.tools[0]["inputSchema"]["properties"]["a"] == {"type": "number"}


def test_it_records_connection_facts_of_a_healthy_check(make_server, sdk_http_url) -> None:
    server = make_server(transport_type=HTTP, url=sdk_http_url)

    check(server)

    assert server.status == McpServer.Status.ACTIVE
    assert server.capabilities == {"tools": {"listChanged": False}}
    assert server.last_connected_at is not None and server.tools_last_synced_at is not None
    assert server.response_time_ms is not None and server.init_duration_ms is not None


def test_it_checks_a_server_over_sse(make_server, sdk_sse_url) -> None:
    server = make_server(transport_type=McpServer.Transport.SSE, url=sdk_sse_url)

    assert check(server).tool_count == 3


def test_it_checks_a_server_over_websocket(make_server, sdk_ws_url) -> None:
    server = make_server(transport_type=McpServer.Transport.WEBSOCKET, url=sdk_ws_url)

    assert check(server).tool_count == 3


def test_it_checks_a_server_over_stdio(make_server) -> None:
    # Starting a Python interpreter with the SDK takes seconds on a loaded 2-core machine.
    server = make_server(**stdio_fields("sdk_peer.py", "stdio"), init_timeout_ms=30_000)

    assert check(server).tool_count == 3


def test_it_falls_back_to_the_initialize_handshake(make_server) -> None:
    server = make_server(**stdio_fields("legacy_peer.py"))

    result = check(server)

    assert result.outcome == "healthy"
    assert server.protocol_version == "2024-11-05"


def test_it_checks_server_everything_over_stdio(make_server, everything_stdio) -> None:
    server = make_server(transport_type=McpServer.Transport.STDIO, **everything_stdio)

    result = check(server)

    assert result.outcome == "healthy", result.message
    assert "echo" in {t["name"] for t in server.tools}


def test_it_checks_server_everything_over_streamable_http(make_server, everything_http_url) -> None:
    server = make_server(transport_type=HTTP, url=everything_http_url)

    result = check(server)

    assert result.outcome == "healthy", result.message
    assert "echo" in {t["name"] for t in server.tools}


def test_it_reports_a_refused_connection_as_unreachable(make_server, refused_url) -> None:
    server = make_server(transport_type=HTTP, url=refused_url)

    assert check(server).outcome == "unreachable"


def test_it_gives_up_on_a_silent_server_within_its_timeout(make_server, hanging_url) -> None:
    server = make_server(transport_type=HTTP, url=hanging_url, init_timeout_ms=1000)
    started = time.monotonic()

    result = check(server)

    assert result.outcome == "timeout"
    assert time.monotonic() - started < 1.0 + SCHEDULING_SLACK_S


def test_it_reports_a_web_page_as_a_protocol_error(make_server, not_mcp_url) -> None:
    server = make_server(transport_type=HTTP, url=not_mcp_url)

    assert check(server).outcome == "protocol_error"


def test_it_reports_a_401_challenge_as_auth_required(make_server, auth_http_url) -> None:
    server = make_server(transport_type=HTTP, url=auth_http_url)

    result = check(server)

    assert result.outcome == "auth_required"
    assert 'WWW-Authenticate: Bearer realm="peer"' in result.message


def test_it_sends_the_bearer_token(make_server, auth_http_url) -> None:
    server = make_server(
        transport_type=HTTP, url=auth_http_url, auth_type="bearer", auth_secret="s3cret"
    )

    assert check(server).outcome == "healthy"


def test_it_sends_the_api_key_with_its_prefix(make_server, apikey_http_url) -> None:
    server = make_server(
        transport_type=HTTP, url=apikey_http_url, auth_type="api_key",
        header_name="X-Api-Key", prefix="Key ", auth_secret="k3y",
    )  # fmt: skip

    assert check(server).outcome == "healthy"


def test_it_needs_a_probe_agent_for_per_agent_credentials(make_server, auth_http_url) -> None:
    server = make_server(
        transport_type=HTTP, url=auth_http_url, auth_type="bearer", credential_mode="per_agent"
    )

    result = check(server)

    assert result.outcome == "auth_required"
    assert "no agent" in result.message


def test_it_uses_the_probe_agents_credential(make_server, auth_http_url) -> None:
    owner = get_user_model().objects.create_user(username="ops")
    agent = Agent.objects.create(name="prober", owner=owner)
    server = make_server(
        transport_type=HTTP, url=auth_http_url, auth_type="bearer",
        credential_mode="per_agent", probe_agent=agent,
    )  # fmt: skip
    AgentConnection.objects.create(agent=agent, server=server)
    Grant.objects.create(server=server, agent=agent, kind="bearer", secret="s3cret")

    assert check(server).outcome == "healthy"


def test_it_reports_a_missing_command_as_unreachable(make_server) -> None:
    server = make_server(transport_type=McpServer.Transport.STDIO, command="/no/such/mcp-server")

    result = check(server)

    assert result.outcome == "unreachable"
    assert "/no/such/mcp-server" in result.message


def _process_state(pid: int) -> str:
    """The /proc state letter ("Z" for a zombie), or "gone" once nothing is left of it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):  # ESRCH: it went while being read
        return "gone"


def _wait_gone(pid: int, seconds: float) -> str:
    deadline = time.monotonic() + seconds
    while (state := _process_state(pid)) != "gone" and time.monotonic() < deadline:
        time.sleep(0.05)
    return state


def test_it_kills_a_hung_stdio_server_and_its_child_within_the_timeout(
    make_server, tmp_path: Path
) -> None:
    pid_file, child_file = tmp_path / "pid", tmp_path / "child"
    server = make_server(
        **stdio_fields("hang_peer.py", str(pid_file), str(child_file)),
        init_timeout_ms=1000, timeout_ms=1000,
    )  # fmt: skip
    started = time.monotonic()

    result = check(server)

    assert result.outcome == "timeout"
    assert time.monotonic() - started < 1.0 + SCHEDULING_SLACK_S
    assert _process_state(int(pid_file.read_text())) == "gone"  # killed and reaped by us
    child = int(child_file.read_text())
    assert _process_state(child) in {"gone", "Z"}  # killed with its group, right away
    # Orphaned when its parent died, so init reaps it (this sandbox's init polls every ~2 s).
    assert _wait_gone(child, seconds=10) == "gone"


def test_it_captures_stderr_when_configured(make_server, tmp_path: Path) -> None:
    fields = stdio_fields("hang_peer.py", str(tmp_path / "pid"))
    server = make_server(**fields, init_timeout_ms=500, stderr=McpServer.Stderr.CAPTURE)

    check(server)

    assert "starting up" in services.server_health_state(server=server)["stderr"]


def test_it_refuses_to_run_stdio_when_not_allowed(make_server, settings, tmp_path: Path) -> None:
    settings.MCPCONTROL_ALLOW_STDIO = False
    pid_file = tmp_path / "pid"
    server = make_server(**stdio_fields("hang_peer.py", str(pid_file)))

    result = check(server)

    assert result.outcome == "disabled"
    assert "MCPCONTROL_ALLOW_STDIO" in result.message
    assert not pid_file.exists()


def test_it_refuses_a_url_the_guard_blocks(make_server, settings, sdk_http_url) -> None:
    settings.MCPCONTROL_ALLOW_PRIVATE_UPSTREAMS = False
    server = make_server(transport_type=HTTP, url=sdk_http_url)

    result = check(server)

    assert result.outcome == "unreachable"
    assert "URL refused" in result.message and "private or loopback" in result.message


def _by_name(url: str) -> str:
    return url.replace("127.0.0.1", "localhost")  # a name, resolved only by the connection


def _probe(transport: str, url: str) -> ProbeResult:
    async def run() -> ProbeResult:
        pool = SharedPool(max_connections=4)
        try:
            return await probe(Target(transport=transport, url=url, init_timeout=10), pool=pool)
        finally:
            await pool.close_pool()

    return anyio.run(run)


@pytest.mark.parametrize(
    ("transport", "fixture"),
    [(HTTP, "sdk_http_url"), (McpServer.Transport.SSE, "sdk_sse_url"),
     (McpServer.Transport.WEBSOCKET, "sdk_ws_url")],
)  # fmt: skip
def test_a_connection_the_guard_refuses_is_unreachable_with_its_message(
    request, settings, transport, fixture
) -> None:
    """Past the pre-check (as if the name rebound after it): refused at connect time."""
    url = _by_name(request.getfixturevalue(fixture))
    settings.MCPCONTROL_ALLOW_PRIVATE_UPSTREAMS = False

    result = _probe(transport, url)

    assert result.outcome == "unreachable"
    assert result.message.startswith("URL refused: localhost is a private or loopback address")


@pytest.mark.parametrize("fixture", ["sdk_http_url", "sdk_ws_url"])
def test_a_name_is_reached_through_its_checked_address_when_allowed(request, fixture) -> None:
    url = _by_name(request.getfixturevalue(fixture))
    transport = HTTP if url.startswith("http") else McpServer.Transport.WEBSOCKET

    result = _probe(transport, url)

    assert result.outcome == "healthy", result.message
