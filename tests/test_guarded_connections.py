"""The URL guard at connect time: a name that rebinds after the check is still refused.

A real HTTP server listens on 127.0.0.1. "rebind.test" is answered by a fake resolver: a
public address the first time (what the request hook's check_url sees), 127.0.0.1 after
(what a connection resolving the name again would use). Only public entry points are used
(lib/http's clients and transports, the backends, open_socket): if any of them connected
without the guard, the server would answer "ok" and these tests would fail.
"""

import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anyio
import httpcore
import httpcore2
import httpx
import httpx2
import pytest

from mcpcontrol.lib import http
from mcpcontrol.lib.netguard import (
    AsyncGuardedBackend,
    AsyncGuardedBackend2,
    GuardedBackend,
    open_socket,
)
from mcpcontrol.lib.urlguard import BlockedUrl, check_url, resolve_checked
from servers.mcp_client.websocket import websocket_client

PUBLIC = "93.184.216.34"
LOOPBACK_REFUSED = "rebind.test is a private or loopback address"


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def rebinding(monkeypatch: pytest.MonkeyPatch) -> Callable[..., list[str]]:
    """Make rebind.test answer `first` (PUBLIC) first, then `target`; returns the answers."""
    real = socket.getaddrinfo
    lookups: list[str] = []
    state = {"target": "127.0.0.1", "first": PUBLIC}

    def fake(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "rebind.test":
            return real(host, port, *args, **kwargs)
        address = state["first"] if not lookups else state["target"]
        lookups.append(address)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port or 0))]

    monkeypatch.setattr(socket, "getaddrinfo", fake)

    def arm(target: str, first: str = PUBLIC) -> list[str]:
        state["target"], state["first"] = target, first
        return lookups

    return arm


@pytest.fixture
def private_off(settings: Any) -> None:
    settings.MCPCONTROL_ALLOW_PRIVATE_UPSTREAMS = False


@pytest.fixture
def private_on(settings: Any) -> None:
    settings.MCPCONTROL_ALLOW_PRIVATE_UPSTREAMS = True


async def _mcp_get(url: str) -> httpx2.Response:
    pool = http.SharedPool(max_connections=2)
    try:
        async with http.mcp_client(pool=pool, headers={}, timeout=5) as client:
            return await client.get(url)
    finally:
        await pool.close_pool()


async def _async_get(url: str) -> httpx.Response:
    async with http.async_client() as client:
        return await client.get(url)


# --- rebinding after the request hook's check ----------------------------------------------


def test_the_sync_client_refuses_a_name_rebound_to_loopback(private_off, rebinding, port) -> None:
    lookups = rebinding("127.0.0.1")

    with http.client() as client, pytest.raises(BlockedUrl, match=LOOPBACK_REFUSED):
        client.get(f"http://rebind.test:{port}/")

    assert lookups == [PUBLIC, "127.0.0.1"]  # the hook passed; the connection was refused


def test_the_async_client_refuses_a_name_rebound_to_loopback(private_off, rebinding, port) -> None:
    lookups = rebinding("127.0.0.1")

    with pytest.raises(BlockedUrl, match=LOOPBACK_REFUSED):
        anyio.run(_async_get, f"http://rebind.test:{port}/")

    assert lookups == [PUBLIC, "127.0.0.1"]


def test_the_mcp_client_refuses_a_name_resolving_to_loopback(private_off, rebinding, port) -> None:
    lookups = rebinding("127.0.0.1", first="127.0.0.1")

    with pytest.raises(BlockedUrl, match=LOOPBACK_REFUSED):
        anyio.run(_mcp_get, f"http://rebind.test:{port}/")

    # Its hook does not resolve names at all: the one lookup, and the refusal, are the pool's.
    assert lookups == ["127.0.0.1"]


def test_the_mcp_client_refuses_a_name_rebound_to_loopback(private_off, rebinding, port) -> None:
    lookups = rebinding("127.0.0.1")
    url = f"http://rebind.test:{port}/"
    check_url(url)  # the health engine's check before the session: sees the public address

    with pytest.raises(BlockedUrl, match=LOOPBACK_REFUSED):
        anyio.run(_mcp_get, url)

    assert lookups == [PUBLIC, "127.0.0.1"]


def test_a_rebind_to_the_metadata_address_is_refused_even_when_private_is_allowed(
    private_on, rebinding
) -> None:
    rebinding("169.254.169.254")

    with http.client() as client, pytest.raises(BlockedUrl, match="link-local or cloud metadata"):
        client.get("http://rebind.test/latest/meta-data/")


# --- the transports alone, without the request hooks ---------------------------------------


def test_the_sync_transport_alone_refuses_a_loopback_name(private_off, port) -> None:
    client = httpx.Client(transport=http.guarded_transport())
    with client, pytest.raises(BlockedUrl, match="localhost is a private or loopback address"):
        client.get(f"http://localhost:{port}/")


def test_the_async_transports_alone_refuse_a_loopback_name(private_off, port) -> None:
    url = f"http://localhost:{port}/"

    async def get() -> None:
        async with httpx.AsyncClient(transport=http.async_guarded_transport()) as client:
            await client.get(url)

    async def get2() -> None:
        pool = http.SharedPool(max_connections=1)
        try:
            async with httpx2.AsyncClient(transport=pool) as client:
                await client.get(url)
        finally:
            await pool.close_pool()

    for request in (get, get2):
        with pytest.raises(BlockedUrl, match="localhost is a private or loopback address"):
            anyio.run(request)


def test_the_transports_alone_reach_a_loopback_name_when_private_is_allowed(
    private_on, port
) -> None:
    with httpx.Client(transport=http.guarded_transport()) as client:
        assert client.get(f"http://localhost:{port}/").text == "ok"


# --- the backends directly ---------------------------------------------------------------


def test_the_backends_refuse_a_loopback_name(private_off, port) -> None:
    with pytest.raises(BlockedUrl, match="localhost"):
        GuardedBackend(httpcore.SyncBackend()).connect_tcp("localhost", port)
    with pytest.raises(BlockedUrl, match="localhost"):
        anyio.run(AsyncGuardedBackend(httpcore.AnyIOBackend()).connect_tcp, "localhost", port)
    with pytest.raises(BlockedUrl, match="localhost"):
        anyio.run(AsyncGuardedBackend2(httpcore2.AnyIOBackend()).connect_tcp, "localhost", port)


def test_the_backend_connects_to_the_checked_address(private_on, port) -> None:
    stream = GuardedBackend(httpcore.SyncBackend()).connect_tcp("localhost", port, timeout=5)
    try:
        assert stream.get_extra_info("server_addr") == ("127.0.0.1", port)
    finally:
        stream.close()


def test_an_unresolvable_name_is_a_connect_error(private_on) -> None:
    with pytest.raises(httpx.ConnectError, match="cannot resolve"), http.client() as client:
        client.get("http://name-that-does-not-exist.invalid/")


def test_resolve_checked_refuses_metadata_host_names(private_on) -> None:
    with pytest.raises(BlockedUrl, match="cloud metadata host"):
        resolve_checked("metadata.google.internal.", 80)


# --- allowed when the setting allows -----------------------------------------------------


def test_every_client_reaches_a_loopback_name_when_private_is_allowed(private_on, port) -> None:
    url = f"http://localhost:{port}/"
    with http.client() as client:
        assert client.get(url).text == "ok"
    assert anyio.run(_async_get, url).text == "ok"
    assert anyio.run(_mcp_get, url).text == "ok"


# --- websocket -----------------------------------------------------------------------------


async def _ws_open(url: str) -> None:
    async with websocket_client(url, headers={}, open_timeout=5):
        pass  # pragma: no cover - refused before the handshake


def test_the_websocket_transport_refuses_a_loopback_server(private_off, port) -> None:
    with pytest.raises(BlockedUrl, match="localhost is a private or loopback address"):
        anyio.run(_ws_open, f"ws://localhost:{port}/")


def test_the_websocket_socket_is_refused_on_rebinding(private_off, rebinding, port) -> None:
    lookups = rebinding("127.0.0.1")
    assert resolve_checked("rebind.test", port) == [PUBLIC]  # what a pre-check would see

    with pytest.raises(BlockedUrl, match=LOOPBACK_REFUSED):
        anyio.run(open_socket, "rebind.test", port)

    assert lookups == [PUBLIC, "127.0.0.1"]


def test_the_websocket_socket_connects_to_the_checked_address(private_on, port) -> None:
    async def peer() -> tuple[str, int]:
        sock = await open_socket("localhost", port)
        with sock:
            return sock.getpeername()[:2]  # type: ignore[no-any-return]

    assert anyio.run(peer) == ("127.0.0.1", port)
