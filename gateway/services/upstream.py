"""One tools/call to one upstream, on the health engine's MCP client layer (servers.mcp_client).

Upstreams are called over a pooled session (gateway.services.sessions: a shared session per
remote credential, a bounded set of processes per stdio credential); `upstream_call`, a
session of its own per call, remains for comparison (bench/stdio_pool_bench.py). Every call
runs under the server's timeout, so a hanging upstream costs its caller that timeout and
nobody else anything.
"""

import subprocess
from dataclasses import dataclass
from typing import Any

import anyio
import mcp_types as types
from mcp import Client

from gateway.services.sessions import CLIENT_INFO, SessionPool, _Held
from mcpcontrol.lib.http import SharedPool
from servers.mcp_client import Target
from servers.mcp_client.errors import Observed, classify
from servers.mcp_client.probe import _transport


@dataclass(frozen=True, kw_only=True)
class Answer:
    """The upstream's result, or why there is none (`outcome` a ToolCall.Outcome value)."""

    outcome: str
    result: types.CallToolResult | None = None
    reason: str = ""


def _failed(exc: BaseException, observed: Observed, target: Target) -> Answer:
    outcome, message = classify(exc, observed)
    if outcome == "timeout":  # the HTTP client's read timeout (the server's timeout_ms)
        message = f"the upstream did not answer within {target.timeout:g}s"
    if outcome not in ("auth_required", "timeout"):
        outcome = "upstream_error"
    return Answer(outcome=outcome, reason=message)


async def pooled_call(
    target: Target, *, server_id: int, tool: str, arguments: dict[str, Any] | None,
    sessions: SessionPool,
) -> Answer:  # fmt: skip
    """Call `tool` over the pooled session of (server, credential). A transport failure
    closes that session (this call fails, the next one reconnects); a timeout closes only a
    stdio process (the hung call would otherwise keep it), a remote session stays."""
    limit = target.init_timeout + target.timeout
    held: _Held | None = None
    try:
        with anyio.fail_after(limit):
            async with sessions.session(server_id, target) as held:
                if held.client is None:
                    raise held.error or RuntimeError("the upstream session closed")
                result = await held.client.call_tool(tool, arguments)
    except TimeoutError:  # a slow tool, not a dead remote session: that session stays
        if held is not None and held.process is not None:
            sessions.discard(held)
        return Answer(outcome="timeout", reason=f"the upstream did not answer within {limit:g}s")
    except Exception as exc:
        if held is not None:
            sessions.discard(held)
        return _failed(exc, held.observed if held is not None else Observed(), target)
    return Answer(outcome="tool_error" if result.is_error else "ok", result=result)


async def upstream_call(
    target: Target, *, tool: str, arguments: dict[str, Any] | None, pool: SharedPool
) -> Answer:
    """Call `tool` on the upstream in a session of its own; never raises for a failing upstream."""
    observed = Observed()
    limit = target.init_timeout + target.timeout
    try:
        with anyio.fail_after(limit):
            transport = _transport(target, pool, observed, subprocess.DEVNULL)
            async with Client(transport, cache=None, client_info=CLIENT_INFO) as client:
                result = await client.call_tool(tool, arguments)
    except TimeoutError:
        return Answer(outcome="timeout", reason=f"the upstream did not answer within {limit:g}s")
    except Exception as exc:  # every failure of the upstream becomes a reason, not a crash
        return _failed(exc, observed, target)
    return Answer(outcome="tool_error" if result.is_error else "ok", result=result)
