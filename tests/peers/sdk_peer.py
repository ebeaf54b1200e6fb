"""A real MCP server built on the official SDK, for the health engine's tests and bench.

Usage: python sdk_peer.py {stdio|sse|streamable-http|websocket} [--tools-file F] [--page-size N]
       [--require-header NAME:VALUE]

Network transports bind 127.0.0.1 on an ephemeral port and print "PORT <n>" as their first
stdout line, so the fixture that started them knows where to connect. The tool list is read
from --tools-file on every tools/list (so a test can change it between two checks) and is
paginated by --page-size (so the client's cursor walk is exercised).
"""

import argparse
import contextvars
import json
import socket
import sys
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
from mcp.server.lowlevel.server import Server
from mcp.server.sse import SseServerTransport
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route

DEFAULT_TOOLS = [
    {
        "name": "add",
        "description": "Add two numbers",
        "inputSchema": {
            "type": "object",
            "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
        },
    },
    {
        "name": "echo",
        "description": "Echo a message",
        "inputSchema": {"type": "object", "properties": {"message": {"type": "string"}}},
    },
    {"name": "time", "description": "The current time", "inputSchema": {"type": "object"}},
]


def build_server(tools_file: str | None, page_size: int) -> Server[Any]:
    def current_tools() -> list[dict[str, Any]]:
        if tools_file and Path(tools_file).exists():
            return json.loads(Path(tools_file).read_text())
        return DEFAULT_TOOLS

    async def list_tools(
        ctx: Any, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        tools = current_tools()
        start = int(params.cursor) if params and params.cursor else 0
        page = tools[start : start + page_size]
        more = start + page_size < len(tools)
        return types.ListToolsResult(
            tools=[types.Tool.model_validate(t) for t in page],
            next_cursor=str(start + page_size) if more else None,
        )

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        return types.CallToolResult(content=[types.TextContent(type="text", text="ok")])

    return Server("sdk-peer", on_list_tools=list_tools, on_call_tool=call_tool)


def bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(512)
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    return sock


def require_header(app: Any, header: str | None) -> Any:
    """Wrap the ASGI app: without the expected header, answer 401 with an OAuth-style challenge."""
    if not header:
        return app
    name, _, value = header.partition(":")

    async def guarded(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            sent = dict((k.decode().lower(), v.decode()) for k, v in scope["headers"])
            if sent.get(name.lower()) != value:
                response = PlainTextResponse(
                    "unauthorized",
                    status_code=401,
                    headers={"WWW-Authenticate": 'Bearer realm="peer"'},
                )
                await response(scope, receive, send)
                return
        await app(scope, receive, send)

    return guarded


def sse_app(server: Server[Any]) -> Starlette:
    sse = SseServerTransport("/messages/")

    async def handle_sse(request: Request) -> Response:
        async with sse.connect_sse(request.scope, request.receive, request._send) as streams:
            await server.run(streams[0], streams[1], server.create_initialization_options())
        return Response()

    return Starlette(
        routes=[
            Route("/sse", endpoint=handle_sse, methods=["GET"]),
            Mount("/messages/", app=sse.handle_post_message),
        ]
    )


# The websocket handshake's headers, seen by the tools of that connection (its tasks
# inherit the context): echo_peer's whoami answers the Authorization header from here.
HANDSHAKE_HEADERS: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "handshake_headers", default=None
)


async def serve_websocket(server: Server[Any], sock: socket.socket) -> None:
    """MCP over websocket (subprotocol "mcp"): one JSON-RPC message per text frame."""
    from websockets.asyncio.server import serve

    async def handler(ws: Any) -> None:
        HANDSHAKE_HEADERS.set({k.lower(): v for k, v in ws.request.headers.raw_items()})
        to_server_send, to_server_recv = anyio.create_memory_object_stream[Any](16)
        from_server_send, from_server_recv = anyio.create_memory_object_stream[Any](16)

        async def pump_in() -> None:
            async with to_server_send:
                async for frame in ws:
                    message = types.jsonrpc_message_adapter.validate_json(frame, by_name=False)
                    await to_server_send.send(SessionMessage(message))

        async def pump_out() -> None:
            async with from_server_recv:
                async for item in from_server_recv:
                    await ws.send(item.message.model_dump_json(by_alias=True, exclude_unset=True))

        async with anyio.create_task_group() as tg:
            tg.start_soon(pump_in)
            tg.start_soon(pump_out)
            await server.run(
                to_server_recv, from_server_send, server.create_initialization_options()
            )
            tg.cancel_scope.cancel()

    async with serve(handler, sock=sock, subprotocols=["mcp"]):
        await anyio.sleep_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("transport", choices=["stdio", "sse", "streamable-http", "websocket"])
    parser.add_argument("--tools-file")
    parser.add_argument("--page-size", type=int, default=2)
    parser.add_argument("--require-header")
    parser.add_argument("--stateless", action="store_true")
    args = parser.parse_args()
    server = build_server(args.tools_file, args.page_size)
    if args.transport == "stdio":

        async def run_stdio() -> None:
            async with stdio_server() as (read, write):
                await server.run(read, write, server.create_initialization_options())

        anyio.run(run_stdio)
        return
    sock = bound_socket()
    if args.transport == "websocket":
        anyio.run(serve_websocket, server, sock)
        return
    import uvicorn

    if args.transport == "sse":
        app = sse_app(server)
    else:
        app = server.streamable_http_app(
            stateless_http=args.stateless, json_response=args.stateless
        )
    app = require_header(app, args.require_header)
    config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    sys.exit(main())
