"""An MCP server that speaks only the 2024-11-05 initialize handshake, over stdio.

Hand-written JSON-RPC on purpose: it answers `initialize` with protocolVersion 2024-11-05
whatever the client proposes and rejects `server/discover` as an unknown method, like a
server built before the 2026 protocol revision.
"""

import json
import sys

TOOLS = [{"name": "legacy_echo", "description": "Echo", "inputSchema": {"type": "object"}}]


def answer(request: dict) -> dict | None:
    method, rid = request.get("method"), request.get("id")
    if rid is None:
        return None  # a notification (notifications/initialized): no reply
    if method == "initialize":
        result = {
            "protocolVersion": "2024-11-05",
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "legacy-peer", "version": "0.1"},
        }
    elif method == "tools/list":
        result = {"tools": TOOLS}
    elif method == "ping":
        result = {}
    else:
        return {
            "jsonrpc": "2.0",
            "id": rid,
            "error": {"code": -32601, "message": "Method not found"},
        }
    return {"jsonrpc": "2.0", "id": rid, "result": result}


for line in sys.stdin:
    if line.strip():
        reply = answer(json.loads(line))
        if reply is not None:
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()
