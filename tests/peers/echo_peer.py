"""An MCP peer for the gateway's tests: it tells who called it.

Usage: python echo_peer.py {streamable-http|sse|websocket|stdio}

Tools: `whoami` answers the Authorization header it received (streamable HTTP and SSE: the
request's; websocket: the handshake's) or the PEER_TOKEN environment variable it was started
with (stdio), so a test checks at the upstream which credential the gateway presented; `add`
adds a and b; `hang` never answers; `pid` answers the process id (which stdio process served
the call), `sleep` the same after `seconds`. Network transports bind 127.0.0.1 on an ephemeral port and print "PORT <n>" first
(SSE at /sse, streamable HTTP at /mcp, websocket at /).
"""

import os
import sys
from typing import Any

import anyio
import mcp_types as types
from mcp.server.lowlevel.server import Server
from mcp.server.stdio import stdio_server

sys.path.insert(0, os.path.dirname(__file__))
from sdk_peer import HANDSHAKE_HEADERS, bound_socket, serve_websocket, sse_app

TOOLS = [
    {"name": "whoami", "description": "The credential this call carried",
     "inputSchema": {"type": "object"}},
    {"name": "add", "description": "Add two numbers", "inputSchema": {
        "type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}}},
    {"name": "hang", "description": "Never answers", "inputSchema": {"type": "object"}},
    {"name": "pid", "description": "This process's id", "inputSchema": {"type": "object"}},
    {"name": "sleep", "description": "Answer the process id after `seconds`", "inputSchema": {
        "type": "object", "properties": {"seconds": {"type": "number"}}}},
]  # fmt: skip


def _text(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)])


def build_server() -> Server[Any]:
    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[types.Tool.model_validate(t) for t in TOOLS])

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        args = params.arguments or {}
        if params.name == "whoami":
            request = ctx.request
            if request is not None and hasattr(request, "headers"):
                return _text(request.headers.get("authorization", ""))
            handshake = HANDSHAKE_HEADERS.get()
            if handshake is not None:
                return _text(handshake.get("authorization", ""))
            return _text(os.environ.get("PEER_TOKEN", ""))
        if params.name == "pid":
            return _text(str(os.getpid()))
        if params.name == "sleep":
            await anyio.sleep(float(args.get("seconds", 0)))
            return _text(str(os.getpid()))
        if params.name == "add":
            return _text(str(args.get("a", 0) + args.get("b", 0)))
        if params.name == "hang":
            await anyio.sleep_forever()
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=f"unknown tool {params.name}")],
            is_error=True,
        )

    return Server("echo-peer", on_list_tools=list_tools, on_call_tool=call_tool)


def main() -> None:
    server = build_server()
    if sys.argv[1] == "stdio":

        async def run_stdio() -> None:
            async with stdio_server() as (read, write):
                await server.run(read, write, server.create_initialization_options())

        anyio.run(run_stdio)
        return
    import uvicorn

    sock = bound_socket()
    if sys.argv[1] == "websocket":
        anyio.run(serve_websocket, server, sock)
        return
    if sys.argv[1] == "sse":
        app: Any = sse_app(server)
    else:
        app = server.streamable_http_app(stateless_http=True, json_response=True)
    config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
