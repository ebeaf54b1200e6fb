"""The URL guard at connect time: resolve once, check every address, connect to a literal.

check_url() resolves a name and checks its addresses, but the connection used to resolve the
name again: a DNS answer that changes in between (rebinding) would send the request to a
loopback or metadata address the guard never saw. Here the resolution that is checked is
the one that is used: the backends below replace httpcore's and httpcore2's connect_tcp, and
open_socket() makes the websocket transport's socket. TLS still uses the URL's host name
(httpcore passes the origin host as server_hostname to start_tls after connect_tcp;
websockets uses the URI host when given a socket), so SNI and certificate checks are as before.
"""

import asyncio
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import anyio.to_thread
import httpcore
import httpcore2

from mcpcontrol.lib.urlguard import BlockedUrl, resolve_checked

__all__ = [
    "AsyncGuardedBackend",
    "AsyncGuardedBackend2",
    "BlockedUrl",
    "GuardedBackend",
    "aresolve",
    "open_socket",
]

SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)


async def aresolve(host: str, port: int) -> list[str]:
    """resolve_checked() off the event loop (getaddrinfo blocks)."""
    return await anyio.to_thread.run_sync(resolve_checked, host, port)


def _unresolvable(host: str, exc: Exception) -> str:
    return f"cannot resolve {host}: {exc}"


async def _first_answering[StreamT](
    host: str,
    port: int,
    connect: Callable[[str], Awaitable[StreamT]],
    connect_error: type[Exception],
) -> StreamT:
    """Connect to the first checked address of `host` that answers (both async backends)."""
    try:
        addresses = await aresolve(host, port)
    except (OSError, UnicodeError) as exc:
        raise connect_error(_unresolvable(host, exc)) from exc
    error: Exception | None = None
    for address in addresses:
        try:
            return await connect(address)
        except connect_error as exc:
            error = exc
    assert error is not None  # getaddrinfo answers at least one address or raises
    raise error


class GuardedBackend(httpcore.NetworkBackend):
    """httpcore's sync backend, connecting only to checked addresses of the host."""

    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = resolve_checked(host, port)
        except (OSError, UnicodeError) as exc:
            raise httpcore.ConnectError(_unresolvable(host, exc)) from exc
        error: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                return self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address,
                    socket_options=socket_options,
                )  # fmt: skip
            except httpcore.ConnectError as exc:
                error = exc
        assert error is not None  # getaddrinfo answers at least one address or raises
        raise error

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.NetworkStream:
        # A socket path comes from our own configuration, never from a URL.
        return self._inner.connect_unix_socket(path, timeout=timeout, socket_options=socket_options)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _AsyncGuard:
    """connect_tcp through the guard, the rest delegated: shared by the httpcore and httpcore2
    backends, which differ only in the library their types and errors come from."""

    _connect_error: type[Exception]

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> Any:
        async def connect(address: str) -> Any:
            return await self._inner.connect_tcp(
                address, port, timeout=timeout, local_address=local_address,
                socket_options=socket_options,
            )  # fmt: skip

        return await _first_answering(host, port, connect, self._connect_error)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> Any:
        # A socket path comes from our own configuration, never from a URL.
        return await self._inner.connect_unix_socket(
            path, timeout=timeout, socket_options=socket_options
        )

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class AsyncGuardedBackend(_AsyncGuard, httpcore.AsyncNetworkBackend):
    """httpcore's async backend (httpx.AsyncClient), connecting only to checked addresses."""

    _connect_error = httpcore.ConnectError


class AsyncGuardedBackend2(_AsyncGuard, httpcore2.AsyncNetworkBackend):
    """The same for httpcore2 (httpx2, the MCP SDK's HTTP client)."""

    _connect_error = httpcore2.ConnectError


async def open_socket(host: str, port: int) -> socket.socket:
    """A TCP socket connected to a checked address of `host` (for the websocket transport).

    Raises BlockedUrl if any address is refused, OSError if none answers. The caller bounds
    the time (the lookup runs in a worker thread, the connects on the event loop).
    """
    addresses = await aresolve(host, port)
    loop = asyncio.get_running_loop()
    error: OSError | None = None
    for address in addresses:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, (address, port))
        except OSError as exc:
            sock.close()
            error = exc
            continue
        except BaseException:
            sock.close()
            raise
        return sock
    assert error is not None
    raise error
