"""The bundled demo MCP server answers our own health probe with its tools, offline."""

import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mcpcontrol.lib.http import SharedPool
from servers.mcp_client.probe import Outcome, Target, probe
from tests.test_health_endpoints import closed_port

ROOT = Path(__file__).resolve().parent.parent


def wait_for_port(port: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"nothing listens on {port}")


async def probe_once(target: Target):
    pool = SharedPool(max_connections=2)
    try:
        return await probe(target, pool=pool)
    finally:
        await pool.close_pool()


@pytest.mark.slow
def test_the_demo_server_is_healthy_with_its_tools():
    port = closed_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mcpcontrol.demo.mcp_server", "--port", str(port)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port(port)
        target = Target(transport="streamable-http", url=f"http://127.0.0.1:{port}/mcp")
        result = asyncio.run(probe_once(target))
    finally:
        server.terminate()
        server.wait(timeout=10)

    assert result.outcome == Outcome.HEALTHY, result.message
    assert {tool["name"] for tool in result.tools or []} == {"add", "echo", "utc_now", "word_count"}
