"""An MCP peer for the gateway's tests: it tells who called it.

Usage: python echo_peer.py {streamable-http|sse|websocket|stdio} [--stream] [--name NAME]
       [--tools N]

Tools: `whoami` answers the Authorization header it received (streamable HTTP and SSE: the
request's; websocket: the handshake's) or the PEER_TOKEN environment variable it was started
with (stdio), so a test checks at the upstream which credential the gateway presented; `add`
adds a and b; `hang` never answers; `pid` answers the process id (which stdio process served
the call), `sleep` the same after `seconds`. `slow` reports progress (steps 1..n, one per
0.2 s, then answers) or, cancelled, counts the cancellation; `cancelled` answers that count.
Resources: `note://<name>/readme` (text), the template `note://<name>/items/{id}`; the prompt
`greet` (argument `who`); <name> is --name (default "echo"). `--tools N` adds tools
t0000..t<N-1> (pagination). `--stream` answers streamable HTTP with SSE when a handler
notifies (progress; the client closing the stream cancels the handler), JSON otherwise.
Network transports bind 127.0.0.1 on an ephemeral port and print "PORT <n>" first (SSE at
/sse, streamable HTTP at /mcp, websocket at /).
"""

import os
import sys
from typing import Any

import anyio
import mcp_types as types
from mcp.server.lowlevel.server import Server
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS

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


def _option(name: str, default: str) -> str:
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


def build_server() -> Server[Any]:
    label = _option("--name", "echo")
    tools = TOOLS + [
        {"name": "slow", "description": "Reports progress", "inputSchema": {"type": "object"}},
        {"name": "cancelled", "description": "Cancelled slow calls", "inputSchema": {"type": "object"}},
    ] + [{"name": f"t{i:04d}", "inputSchema": {"type": "object"}}
         for i in range(int(_option("--tools", "0")))]  # fmt: skip
    cancelled = [0]

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[types.Tool.model_validate(t) for t in tools])

    async def slow(ctx: Any, args: dict[str, Any]) -> types.CallToolResult:
        steps = int(args.get("steps", 3))
        try:
            for step in range(1, steps + 1):
                await ctx.session.report_progress(step, steps, f"step {step}")
                await anyio.sleep(float(args.get("pause", 0.2)))
        except anyio.get_cancelled_exc_class():
            cancelled[0] += 1
            raise
        return _text(f"done after {steps} steps")

    async def list_resources(ctx: Any, params: Any) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=[types.Resource(
            uri=f"note://{label}/readme", name="readme", mime_type="text/plain")])  # fmt: skip

    async def list_templates(ctx: Any, params: Any) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(resource_templates=[types.ResourceTemplate(
            uri_template=f"note://{label}/items/{{id}}", name="item")])  # fmt: skip

    async def read_resource(ctx: Any, params: Any) -> types.ReadResourceResult:
        uri = str(params.uri)
        if uri == f"note://{label}/readme":
            text = f"readme of {label}"
        elif uri.startswith(f"note://{label}/items/"):
            text = f"item {uri.rsplit('/', 1)[1]} of {label}"
        else:
            raise MCPError(INVALID_PARAMS, f"no resource {uri}")
        return types.ReadResourceResult(contents=[
            types.TextResourceContents(uri=uri, text=text, mime_type="text/plain")])  # fmt: skip

    async def list_prompts(ctx: Any, params: Any) -> types.ListPromptsResult:
        return types.ListPromptsResult(prompts=[types.Prompt(
            name="greet", description=f"greeting from {label}",
            arguments=[types.PromptArgument(name="who", required=True)])])  # fmt: skip

    async def get_prompt(ctx: Any, params: types.GetPromptRequestParams) -> types.GetPromptResult:
        if params.name != "greet":
            raise MCPError(INVALID_PARAMS, f"no prompt {params.name}")
        who = (params.arguments or {}).get("who", "you")
        return types.GetPromptResult(messages=[types.PromptMessage(
            role="user", content=types.TextContent(type="text", text=f"hello {who} from {label}"))])  # fmt: skip

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
        if params.name == "slow":
            return await slow(ctx, args)
        if params.name == "cancelled":
            return _text(str(cancelled[0]))
        if params.name.startswith("t") and params.name[1:].isdigit():
            return _text(params.name)
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=f"unknown tool {params.name}")],
            is_error=True,
        )

    return Server(
        "echo-peer", on_list_tools=list_tools, on_call_tool=call_tool,
        on_list_resources=list_resources, on_list_resource_templates=list_templates,
        on_read_resource=read_resource, on_list_prompts=list_prompts, on_get_prompt=get_prompt,
    )  # fmt: skip


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
        stream = "--stream" in sys.argv
        app = server.streamable_http_app(stateless_http=True, json_response=not stream)
    config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
