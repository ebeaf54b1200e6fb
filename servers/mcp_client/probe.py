"""One MCP session against one server: connect, negotiate, list every tool, close.

Nothing here touches Django: the caller turns a server row into a `Target` first (that is
where credentials and the URL guard are applied) and stores the `ProbeResult` afterwards,
so many probes can share one event loop and one connection pool.
"""

import enum
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any

import anyio
from mcp import Client
from mcp.client import Transport
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import Implementation

from mcpcontrol.lib.http import SharedPool, mcp_client
from servers.mcp_client.errors import Observed, classify
from servers.mcp_client.stdio import stdio_client
from servers.mcp_client.websocket import websocket_client

CLIENT_INFO = Implementation(name="mcpcontrol-health", version="1.0")
# A server that paginates forever must not keep a check alive: cap the cursor walk.
MAX_TOOL_PAGES = 50
STDERR_TAIL_CHARS = 2000
# Closing gets this long after a result (the stdio transport bounds its own reaping).
CLOSE_GRACE = 5.0


class Outcome(enum.StrEnum):
    HEALTHY = "healthy"
    UNREACHABLE = "unreachable"
    TIMEOUT = "timeout"
    AUTH_REQUIRED = "auth_required"
    PROTOCOL_ERROR = "protocol_error"
    DISABLED = "disabled"


@dataclass(frozen=True, kw_only=True)
class Target:
    """Everything a probe needs, resolved from the server row beforehand (no ORM in here)."""

    transport: str  # McpServer.Transport value
    url: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    command: str = ""
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    cwd: str = ""
    capture_stderr: bool = False
    init_timeout: float = 60.0  # seconds for connect + handshake
    timeout: float = 30.0  # seconds for the tool listing
    legacy: bool = False  # skip the server/discover probe: last time it spoke initialize


@dataclass(kw_only=True)
class ProbeResult:
    outcome: Outcome
    message: str = ""
    response_time_ms: int | None = None
    init_duration_ms: int | None = None
    protocol_version: str = ""
    capabilities: dict[str, Any] = field(default_factory=dict)
    tools: list[dict[str, Any]] | None = None
    stderr: str = ""


def _ms(since: float) -> int:
    return round((time.monotonic() - since) * 1000)


def _transport(
    target: Target, pool: SharedPool | None, observed: Observed, errlog: IO[str] | int
) -> Transport:
    if target.transport == "stdio":
        # Our own transport, not the SDK's: its polite shutdown adds ~3 s to a hung server.
        return stdio_client(
            command=target.command, args=target.args, env=target.env, cwd=target.cwd,
            errlog=errlog,
        )  # fmt: skip
    if target.transport == "websocket":
        return websocket_client(
            target.url, headers=target.headers, open_timeout=target.init_timeout
        )
    if pool is None:
        raise ValueError("remote transports need a SharedPool")
    http = mcp_client(
        pool=pool, headers=target.headers, timeout=target.timeout, on_response=observed.on_response
    )
    if target.transport == "sse":
        return sse_client(
            target.url, httpx_client_factory=lambda headers=None, timeout=None, auth=None: http
        )
    return streamable_http_client(target.url, http_client=http)


def _without_nul(value: Any) -> Any:
    """The value with NUL characters removed: PostgreSQL's jsonb cannot store them, and one
    server's odd tool description must not fail the writes of every check beside it."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


async def _list_tools(client: Client) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(MAX_TOOL_PAGES):
        page = await client.list_tools(cursor=cursor)
        tools.extend(
            _without_nul(
                {"name": t.name, "description": t.description or "", "inputSchema": t.input_schema}
            )
            for t in page.tools
        )
        cursor = page.next_cursor
        if not cursor:
            break
    return tools


async def _session(target: Target, transport: Transport, started: float) -> ProbeResult:
    """Steps: 1. handshake under init_timeout; 2. tool listing under timeout; 3. close,
    bounded by CLOSE_GRACE (a result already in hand survives a slow close)."""
    mode = "legacy" if target.legacy else "auto"
    result: ProbeResult | None = None
    phase, limit = "handshake", target.init_timeout
    with anyio.CancelScope(deadline=anyio.current_time() + target.init_timeout) as scope:
        async with Client(transport, mode=mode, cache=None, client_info=CLIENT_INFO) as client:
            init_ms = _ms(started)
            phase, limit = "tools/list", target.timeout
            scope.deadline = anyio.current_time() + target.timeout
            tools = await _list_tools(client)
            caps = client.server_capabilities.model_dump(
                by_alias=True, mode="json", exclude_none=True
            )
            result = ProbeResult(
                outcome=Outcome.HEALTHY,
                response_time_ms=_ms(started),
                init_duration_ms=init_ms,
                protocol_version=client.protocol_version,
                capabilities=caps,
                tools=tools,
            )
            scope.deadline = anyio.current_time() + CLOSE_GRACE
    if result is not None:
        return result
    return ProbeResult(outcome=Outcome.TIMEOUT, message=f"no answer to {phase} within {limit:g}s")


async def probe(target: Target, *, pool: SharedPool | None = None) -> ProbeResult:
    """Run one health session against `target`; never raises for a failing server."""
    started = time.monotonic()
    observed = Observed()
    with _stderr_sink(target) as errlog:
        try:
            transport = _transport(target, pool, observed, errlog)
            result = await _session(target, transport, started)
        except Exception as exc:  # every failure of the peer becomes an outcome, not a crash
            outcome, message = classify(exc, observed)
            result = ProbeResult(outcome=Outcome(outcome), message=message)
        if result.response_time_ms is None:
            result.response_time_ms = _ms(started)
        result.stderr = _tail(errlog)
    return result


@contextmanager
def _stderr_sink(target: Target) -> Iterator[IO[str] | int]:
    """A temp file capturing a stdio child's stderr, or DEVNULL when it is ignored."""
    if target.transport != "stdio" or not target.capture_stderr:
        yield subprocess.DEVNULL
        return
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace") as sink:
        yield sink


def _tail(errlog: IO[str] | int) -> str:
    if isinstance(errlog, int):
        return ""
    errlog.seek(0)
    return errlog.read()[-STDERR_TAIL_CHARS:]
