"""The gateway served for real: the ASGI application under uvicorn on 127.0.0.1, in a thread
of the test process (so it shares the test database: tests using it need transactional_db),
and the echo peer as its upstream."""

import asyncio
import socket
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from tests.mcp_peers import PEERS, Peer, start_peer


@pytest.fixture
def gateway_url(transactional_db: Any) -> Iterator[str]:
    from mcpcontrol.asgi import application

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(application, log_level="warning", lifespan="on", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the gateway did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def echo_peer() -> Iterator[Peer]:
    peer = start_peer([sys.executable, str(PEERS / "echo_peer.py"), "streamable-http"])
    try:
        yield peer
    finally:
        peer.stop()
