"""Real MCP peers for the whole suite (health, credentials, gateway), each on 127.0.0.1 with an
ephemeral port.

Peers run as subprocesses (tests/peers/) or, for the simplest fault peers, as threads in
this process; every fixture stops what it started.
"""

import json
import queue
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from credentials.models import Grant
from servers.models import McpServer

ROOT = Path(__file__).resolve().parents[1]
PEERS = ROOT / "tests" / "peers"
EVERYTHING = ROOT / "node_modules" / "@modelcontextprotocol" / "server-everything" / "dist"
STARTUP_SECONDS = 20


class Peer:
    def __init__(self, proc: subprocess.Popen[str], port: int | None) -> None:
        self.proc, self.port = proc, port

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


def _read_port(proc: subprocess.Popen[str]) -> int:
    """The port from the peer's "PORT <n>" line, waiting at most STARTUP_SECONDS.

    A reader thread, not select(): readline() may buffer the PORT line together with an
    earlier one, and select() on the pipe would then wait for data that was already read.
    """
    assert proc.stdout is not None
    lines: queue.Queue[str] = queue.Queue()

    def pump(stream: Any) -> None:  # also keeps draining the pipe so the peer never blocks
        for line in stream:
            lines.put(line)

    threading.Thread(target=pump, args=(proc.stdout,), daemon=True).start()
    deadline = time.monotonic() + STARTUP_SECONDS
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if line.startswith("PORT "):
            return int(line.split()[1])
    proc.kill()
    raise RuntimeError(f"peer {proc.args} did not report a port within {STARTUP_SECONDS}s")


def start_peer(args: list[str], env: dict[str, str] | None = None) -> Peer:
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    return Peer(proc, _read_port(proc))


def sdk_peer_args(transport: str, *extra: str) -> list[str]:
    return [sys.executable, str(PEERS / "sdk_peer.py"), transport, *extra]


@pytest.fixture(scope="session")
def sdk_http_url() -> Iterator[str]:
    peer = start_peer(sdk_peer_args("streamable-http"))
    yield f"http://127.0.0.1:{peer.port}/mcp"
    peer.stop()


@pytest.fixture(scope="session")
def sdk_sse_url() -> Iterator[str]:
    peer = start_peer(sdk_peer_args("sse"))
    yield f"http://127.0.0.1:{peer.port}/sse"
    peer.stop()


@pytest.fixture(scope="session")
def sdk_ws_url() -> Iterator[str]:
    peer = start_peer(sdk_peer_args("websocket"))
    yield f"ws://127.0.0.1:{peer.port}/"
    peer.stop()


@pytest.fixture(scope="session")
def auth_http_url() -> Iterator[str]:
    """A streamable HTTP peer that answers 401 + WWW-Authenticate without `Bearer s3cret`."""
    peer = start_peer(
        sdk_peer_args("streamable-http", "--require-header", "Authorization:Bearer s3cret")
    )
    yield f"http://127.0.0.1:{peer.port}/mcp"
    peer.stop()


@pytest.fixture(scope="session")
def apikey_http_url() -> Iterator[str]:
    peer = start_peer(sdk_peer_args("streamable-http", "--require-header", "X-Api-Key:Key k3y"))
    yield f"http://127.0.0.1:{peer.port}/mcp"
    peer.stop()


@pytest.fixture
def tools_file(tmp_path: Path) -> Path:
    path = tmp_path / "tools.json"
    path.write_text(
        json.dumps([{"name": "one", "description": "1", "inputSchema": {"type": "object"}}])
    )
    return path


@pytest.fixture
def changing_http_url(tools_file: Path) -> Iterator[str]:
    """A peer whose tool list is re-read from `tools_file` on every tools/list."""
    peer = start_peer(sdk_peer_args("streamable-http", "--tools-file", str(tools_file)))
    yield f"http://127.0.0.1:{peer.port}/mcp"
    peer.stop()


def _node() -> str:
    node = shutil.which("node")
    if node is None or not (EVERYTHING / "index.js").exists():
        pytest.skip("node or node_modules/@modelcontextprotocol/server-everything missing (npm ci)")
    return node


@pytest.fixture(scope="session")
def everything_http_url() -> Iterator[str]:
    node = _node()
    env = {"PATH": "/usr/bin:/bin", "PORT": "0"}
    args = [
        node,
        "--import",
        str(PEERS / "loopback.mjs"),
        str(EVERYTHING / "index.js"),
        "streamableHttp",
    ]
    peer = start_peer(args, env=env)
    yield f"http://127.0.0.1:{peer.port}/mcp"
    peer.stop()


@pytest.fixture
def everything_stdio() -> dict[str, Any]:
    return {"command": _node(), "args": [str(EVERYTHING / "index.js"), "stdio"]}


@pytest.fixture
def refused_url() -> str:
    """A loopback port nobody listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/mcp"


@pytest.fixture
def hanging_url() -> Iterator[str]:
    """Accepts TCP connections and never answers a byte."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/mcp"
    stop.set()
    thread.join(timeout=2)
    for conn in held:
        conn.close()
    listener.close()


class _NotMcp(BaseHTTPRequestHandler):
    def _page(self) -> None:
        body = b"<html><body>Welcome to nginx!</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = _page

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def not_mcp_url() -> Iterator[str]:
    """An HTTP server answering 200 text/html to everything."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotMcp)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/mcp"
    server.shutdown()
    server.server_close()


@pytest.fixture
def private_cache(settings: Any) -> None:
    """A local-memory cache per test: clearing a shared Redis would hit other test runs."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"health-{uuid.uuid4()}",
        }
    }


@pytest.fixture
def make_server(db: None) -> Callable[..., McpServer]:
    """Create a server row: short timeouts so a failing check is quick."""
    counter = iter(range(10_000))

    def make(**fields: Any) -> McpServer:
        """auth_secret becomes the server's shared credential (a Grant), as the API stores it."""
        n = next(counter)
        secret = fields.pop("auth_secret", None)
        defaults: dict[str, Any] = {
            "name": f"server-{n}",
            "path": f"/server-{n}",
            "timeout_ms": 5000,
            "init_timeout_ms": 5000,
        }
        server = McpServer.objects.create(**{**defaults, **fields})
        if secret is not None:
            Grant.objects.create(server=server, kind=server.auth_type, secret=secret)
        return server

    return make


def stdio_fields(script: str, *args: str) -> dict[str, Any]:
    return {
        "transport_type": McpServer.Transport.STDIO,
        "command": sys.executable,
        "args": [str(PEERS / script), *args],
    }
