"""A local MCP server for the demo: streamable HTTP on 127.0.0.1, a few harmless tools.

`make run` starts it beside the console so a newcomer sees a healthy server with tools
without internet. Run alone: python -m mcpcontrol.demo.mcp_server [--port N]
(default: MCPCONTROL_DEMO_MCP_PORT, else 8790); the endpoint is http://127.0.0.1:N/mcp.
"""

import argparse
import datetime
import os

from mcp.server.mcpserver import MCPServer

DEFAULT_PORT = 8790

server = MCPServer("mcpcontrol-demo", instructions="A local demo server bundled with mcpcontrol.")


@server.tool()
def add(a: float, b: float) -> float:
    """Add two numbers."""
    return a + b


@server.tool()
def echo(message: str) -> str:
    """Return the message unchanged."""
    return message


@server.tool()
def utc_now() -> str:
    """The current time in UTC, ISO 8601."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


@server.tool()
def word_count(text: str) -> int:
    """Count the words in a text."""
    return len(text.split())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("MCPCONTROL_DEMO_MCP_PORT", DEFAULT_PORT))
    )
    args = parser.parse_args()
    # Loopback only: it is a demo, never something to expose.
    server.run("streamable-http", host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
