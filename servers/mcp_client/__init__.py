"""The MCP client layer of the health engine, on the official SDK (2.x).

`probe(target, pool=...)` runs one session over stdio, SSE, streamable HTTP or websocket and
returns a `ProbeResult`; `SharedPool` is the connection pool many probes share.
"""

import logging

from mcpcontrol.lib.http import SharedPool
from servers.mcp_client.probe import Outcome, ProbeResult, Target, probe

__all__ = ["Outcome", "ProbeResult", "SharedPool", "Target", "probe"]

# The SDK and httpx2 log every request at INFO; a health sweep of hundreds of servers would
# drown the worker log. (settings.LOGGING quiets httpx but does not know httpx2 yet.)
for _name in ("httpx2", "mcp.client.streamable_http", "mcp.client.sse"):
    logging.getLogger(_name).setLevel(logging.WARNING)
