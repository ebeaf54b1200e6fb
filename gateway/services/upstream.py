"""One tools/call to one upstream, on the health engine's MCP client layer (servers.mcp_client).

Each call opens its own upstream session (no pooling of sessions yet, docs/gateway.md) over
one shared HTTP connection pool, under the server's timeout, so a hanging upstream costs its
caller that timeout and nobody else anything.
"""

import subprocess
from dataclasses import dataclass
from typing import Any

import anyio
import mcp_types as types
from mcp import Client
from mcp_types import Implementation

from mcpcontrol.lib.http import SharedPool
from servers.mcp_client import Target
from servers.mcp_client.errors import Observed, classify
from servers.mcp_client.probe import _transport

CLIENT_INFO = Implementation(name="mcpcontrol-gateway", version="1.0")


@dataclass(frozen=True, kw_only=True)
class Answer:
    """The upstream's result, or why there is none (`outcome` a ToolCall.Outcome value)."""

    outcome: str
    result: types.CallToolResult | None = None
    reason: str = ""


async def upstream_call(
    target: Target, *, tool: str, arguments: dict[str, Any] | None, pool: SharedPool
) -> Answer:
    """Call `tool` on the upstream; never raises for a failing upstream."""
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
        outcome, message = classify(exc, observed)
        if outcome == "auth_required":
            return Answer(outcome="auth_required", reason=message)
        if outcome == "timeout":  # the HTTP client's read timeout (the server's timeout_ms)
            reason = f"the upstream did not answer within {target.timeout:g}s"
            return Answer(outcome="timeout", reason=reason)
        return Answer(outcome="upstream_error", reason=message)
    return Answer(outcome="tool_error" if result.is_error else "ok", result=result)
