"""Our transports (lib/transports) behave as httpx's own: errors, streaming, TLS, options.

Every client of lib/http and the MCP pool goes through them, so a difference from httpx's
default transport would surface as a wrong exception type in the health engine or the OAuth
client. The peers are real servers on 127.0.0.1.
"""

import datetime
import socket
import ssl
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import httpcore
import httpcore2
import httpx
import httpx2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mcpcontrol.lib import http
from mcpcontrol.lib.transports import (
    _ERROR_NAMES,
    HTTPX2_ERRORS,
    HTTPX_ERRORS,
    mapped_errors,
)

pytestmark = pytest.mark.usefixtures("private_on")


@pytest.fixture
def private_on(settings: Any) -> None:
    settings.MCPCONTROL_ALLOW_PRIVATE_UPSTREAMS = True


class _Handler(BaseHTTPRequestHandler):
    """/ok answers; /truncated promises 10 bytes and sends 3; /stream sends one chunk, waits
    for the test's `release`, then another; /slow answers only after `release`."""

    server: "_Server"

    def do_GET(self) -> None:
        if self.path == "/slow":
            self.server.release.wait(10)
        self.send_response(200)
        if self.path == "/truncated":
            self.send_header("Content-Length", "10")
        elif self.path != "/stream":
            self.send_header("Content-Length", "2")
        self.end_headers()
        if self.path == "/truncated":
            self.wfile.write(b"abc")
        elif self.path == "/stream":
            self.wfile.write(b"first")
            self.wfile.flush()
            self.server.release.wait(10)
            self.wfile.write(b"second")
        else:
            self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    release: threading.Event

    @property
    def port(self) -> int:
        return int(self.server_address[1])


@contextmanager
def _serving(tls: ssl.SSLContext | None = None) -> Iterator[_Server]:
    server = _Server(("127.0.0.1", 0), _Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    server.release = threading.Event()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()


@pytest.fixture
def peer() -> Iterator[_Server]:
    with _serving() as server:
        yield server


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _mcp_get(url: str, **kwargs: Any) -> httpx2.Response:
    pool = http.SharedPool(max_connections=1)
    try:
        async with http.mcp_client(pool=pool, headers={}, timeout=kwargs.pop("timeout", 5)) as c:
            return await c.get(url)
    finally:
        await pool.close_pool()


async def _async_get(url: str, **kwargs: Any) -> httpx.Response:
    async with http.async_client(**kwargs) as client:
        return await client.get(url)


# --- exception mapping ---------------------------------------------------------------------


@pytest.mark.parametrize("name", _ERROR_NAMES)
@pytest.mark.parametrize(
    ("core", "client", "errors"),
    [(httpcore, httpx, HTTPX_ERRORS), (httpcore2, httpx2, HTTPX2_ERRORS)],
    ids=["httpx", "httpx2"],
)
def test_each_httpcore_error_becomes_the_client_error_of_its_name(
    name: str, core: Any, client: Any, errors: Any
) -> None:
    with pytest.raises(getattr(client, name)) as caught, mapped_errors(errors):
        raise getattr(core, name)("boom")

    assert type(caught.value) is getattr(client, name)
    assert str(caught.value) == "boom"
    assert type(caught.value.__cause__) is getattr(core, name)


def test_a_subclass_of_an_httpcore_error_maps_through_its_nearest_base() -> None:
    class Odd(httpcore.ReadTimeout):
        pass

    with pytest.raises(httpx.ReadTimeout), mapped_errors(HTTPX_ERRORS):
        raise Odd("late")


def test_other_errors_pass_unchanged() -> None:
    with pytest.raises(KeyError), mapped_errors(HTTPX_ERRORS):
        raise KeyError("not httpcore's")


def test_a_refused_connection_is_a_connect_error_in_every_client() -> None:
    url = f"http://127.0.0.1:{_closed_port()}/"

    with http.client() as client, pytest.raises(httpx.ConnectError):
        client.get(url)
    with pytest.raises(httpx.ConnectError):
        anyio.run(_async_get, url)
    with pytest.raises(httpx2.ConnectError):
        anyio.run(_mcp_get, url)


def test_a_silent_peer_is_a_read_timeout_in_every_client(peer: _Server) -> None:
    url = f"http://localhost:{peer.port}/slow"

    with http.client(timeout=0.3) as client, pytest.raises(httpx.ReadTimeout):
        client.get(url)
    with pytest.raises(httpx.ReadTimeout):
        anyio.run(lambda: _async_get(url, timeout=0.3))
    with pytest.raises(httpx2.ReadTimeout):
        anyio.run(lambda: _mcp_get(url, timeout=0.3))


def test_a_body_cut_short_is_a_remote_protocol_error_in_every_client(peer: _Server) -> None:
    url = f"http://localhost:{peer.port}/truncated"

    with http.client() as client, pytest.raises(httpx.RemoteProtocolError, match="peer closed"):
        client.get(url)
    with pytest.raises(httpx.RemoteProtocolError, match="peer closed"):
        anyio.run(_async_get, url)
    with pytest.raises(httpx2.RemoteProtocolError, match="peer closed"):
        anyio.run(_mcp_get, url)


# --- streaming -----------------------------------------------------------------------------


def test_the_sync_body_streams_before_the_peer_finishes(peer: _Server) -> None:
    with http.client() as client, client.stream("GET", f"http://localhost:{peer.port}/stream") as r:
        chunks = r.iter_raw()
        assert next(chunks) == b"first"  # the peer still waits for `release`
        peer.release.set()
        assert b"".join(chunks) == b"second"


async def _first_then_rest(peer: _Server, chunks: AsyncIterator[bytes]) -> list[bytes]:
    first = await anext(chunks)  # the peer still waits for `release`
    peer.release.set()
    return [first, b"".join([part async for part in chunks])]


def test_the_async_body_streams_before_the_peer_finishes(peer: _Server) -> None:
    async def read() -> list[bytes]:
        url = f"http://localhost:{peer.port}/stream"
        async with http.async_client() as client, client.stream("GET", url) as response:
            return await _first_then_rest(peer, response.aiter_raw())

    assert anyio.run(read) == [b"first", b"second"]


def test_the_mcp_pool_body_streams_before_the_peer_finishes(peer: _Server) -> None:
    # The SSE transport reads events as they come: a buffered body would hang it.
    async def read() -> list[bytes]:
        url = f"http://localhost:{peer.port}/stream"
        pool = http.SharedPool(max_connections=1)
        try:
            async with (
                http.mcp_client(pool=pool, headers={}, timeout=5) as client,
                client.stream("GET", url) as response,
            ):
                return await _first_then_rest(peer, response.aiter_raw())
        finally:
            await pool.close_pool()

    assert anyio.run(read) == [b"first", b"second"]


# --- TLS and options -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A self-signed certificate for the name localhost only (no IP address in it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = tmp_path_factory.mktemp("tls") / "localhost.pem"
    path.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


@pytest.fixture
def tls_peer(certificate: Path) -> Iterator[_Server]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate)
    with _serving(context) as server:
        yield server


def test_tls_verifies_the_url_host_name_though_the_socket_goes_to_an_address(
    tls_peer: _Server, certificate: Path
) -> None:
    # The guard connects to 127.0.0.1; the certificate names only localhost, so this passes
    # only if the handshake still sends and checks the URL's host name.
    trusting = ssl.create_default_context(cafile=str(certificate))
    url = f"https://localhost:{tls_peer.port}/ok"

    with http.client(verify=trusting) as client:
        assert client.get(url).text == "ok"
    assert anyio.run(lambda: _async_get(url, verify=trusting)).text == "ok"


def test_tls_refuses_a_certificate_the_verify_option_does_not_trust(tls_peer: _Server) -> None:
    url = f"https://localhost:{tls_peer.port}/ok"

    with http.client() as client, pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY"):
        client.get(url)
    with http.client(verify=False) as client:
        assert client.get(url).text == "ok"


@pytest.mark.parametrize("option", ["proxy", "mounts"])
def test_a_client_refuses_options_that_would_bypass_the_guard(option: str) -> None:
    with pytest.raises(TypeError, match="no proxy or mounts"):
        http.client(**{option: None})
    with pytest.raises(TypeError, match="no proxy or mounts"):
        http.async_client(**{option: None})
