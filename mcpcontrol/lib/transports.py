"""httpx and httpx2 transports whose connections are made through the connect-time guard.

Built from public APIs only: httpx's transport interface (`BaseTransport`,
`AsyncBaseTransport`, the byte streams) and httpcore's connection pools, which take a
`network_backend`. httpx's own transports expose no backend, so this module repeats the
small part of them we use: build the pool, turn the request into httpcore's and the response
back, and map httpcore's exceptions to httpx's (httpx keeps that table private).

No proxy, ever: through a proxy the guard would check the proxy's address, not the
upstream's. httpx.Client reads proxy variables from the environment only when it builds the
transport itself, and lib/http refuses explicit proxies and mounts.
"""

import ssl
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any, TypedDict, Unpack

import httpcore
import httpcore2
import httpx
import httpx2

from mcpcontrol.lib.netguard import AsyncGuardedBackend, AsyncGuardedBackend2, GuardedBackend

__all__ = [
    "AsyncGuardedTransport",
    "AsyncGuardedTransport2",
    "GuardedTransport",
    "TransportOptions",
]

# httpx's defaults (its DEFAULT_LIMITS is private).
_DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)

# httpcore's exceptions, by the name of the httpx exception each becomes (httpx and httpx2
# name theirs like httpcore and httpcore2 do). A subclass maps through its nearest listed
# base, so a new httpcore error still becomes the right family of httpx error.
_ERROR_NAMES = (
    "TimeoutException", "ConnectTimeout", "ReadTimeout", "WriteTimeout", "PoolTimeout",
    "NetworkError", "ConnectError", "ReadError", "WriteError",
    "ProtocolError", "LocalProtocolError", "RemoteProtocolError",
    "ProxyError", "UnsupportedProtocol",
)  # fmt: skip

type ErrorMap = dict[type[Exception], type[Exception]]


def _error_map(core: ModuleType, client: ModuleType) -> ErrorMap:
    return {getattr(core, name): getattr(client, name) for name in _ERROR_NAMES}


HTTPX_ERRORS = _error_map(httpcore, httpx)
HTTPX2_ERRORS = _error_map(httpcore2, httpx2)


@contextmanager
def mapped_errors(errors: ErrorMap) -> Iterator[None]:
    """Re-raise an httpcore exception as its httpx counterpart; anything else (BlockedUrl
    from the guard among them) passes unchanged."""
    try:
        yield
    except Exception as exc:
        for cls in type(exc).__mro__:
            if cls in errors:
                raise errors[cls](str(exc)) from exc
        raise


class TransportOptions(TypedDict, total=False):
    """What httpx.Client would pass to the transport it builds; we build it, so we take them."""

    verify: ssl.SSLContext | bool
    cert: str | tuple[str, str] | tuple[str, str, str]
    trust_env: bool  # here only SSL_CERT_FILE / SSL_CERT_DIR; proxies are never used
    http1: bool
    http2: bool
    limits: httpx.Limits | httpx2.Limits


def _pool_options(
    options: TransportOptions, create_ssl_context: Callable[..., ssl.SSLContext]
) -> dict[str, Any]:
    limits = options.get("limits") or _DEFAULT_LIMITS
    context = create_ssl_context(
        verify=options.get("verify", True),
        cert=options.get("cert"),
        trust_env=options.get("trust_env", True),
    )
    return {
        "ssl_context": context,
        "max_connections": limits.max_connections,
        "max_keepalive_connections": limits.max_keepalive_connections,
        "keepalive_expiry": limits.keepalive_expiry,
        "http1": options.get("http1", True),
        "http2": options.get("http2", False),
    }


def _core_request(core: ModuleType, request: httpx.Request | httpx2.Request) -> Any:
    """`request` as httpcore's (or httpcore2's) Request; the body streams through as is."""
    url = request.url
    return core.Request(
        method=request.method,
        url=core.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path),
        headers=request.headers.raw,
        content=request.stream,
        extensions=request.extensions,
    )


# --- response bodies: read lazily from the pool, errors mapped while reading ---------------


class _Body(httpx.SyncByteStream):
    def __init__(self, stream: Iterable[bytes]) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        with mapped_errors(HTTPX_ERRORS):
            yield from self._stream

    def close(self) -> None:
        close = getattr(self._stream, "close", None)  # returns the connection to the pool
        if close is not None:
            close()


class _AsyncBodyBase:
    _errors: ErrorMap

    def __init__(self, stream: AsyncIterable[bytes]) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with mapped_errors(self._errors):
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        aclose = getattr(self._stream, "aclose", None)  # returns the connection to the pool
        if aclose is not None:
            await aclose()


class _AsyncBody(_AsyncBodyBase, httpx.AsyncByteStream):
    _errors = HTTPX_ERRORS


class _AsyncBody2(_AsyncBodyBase, httpx2.AsyncByteStream):
    _errors = HTTPX2_ERRORS


# --- transports ----------------------------------------------------------------------------


class GuardedTransport(httpx.BaseTransport):
    """httpx's sync transport interface over httpcore's pool, connecting via GuardedBackend."""

    def __init__(self, **options: Unpack[TransportOptions]) -> None:
        self._pool = httpcore.ConnectionPool(
            network_backend=GuardedBackend(httpcore.SyncBackend()),
            **_pool_options(options, httpx.create_ssl_context),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with mapped_errors(HTTPX_ERRORS):
            response = self._pool.handle_request(_core_request(httpcore, request))
        assert isinstance(response.stream, Iterable)  # a sync pool answers with a sync body
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_Body(response.stream),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._pool.close()


class AsyncGuardedTransport(httpx.AsyncBaseTransport):
    """The async twin (httpx.AsyncClient), connecting via AsyncGuardedBackend."""

    def __init__(self, **options: Unpack[TransportOptions]) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            network_backend=AsyncGuardedBackend(httpcore.AnyIOBackend()),
            **_pool_options(options, httpx.create_ssl_context),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        with mapped_errors(HTTPX_ERRORS):
            response = await self._pool.handle_async_request(_core_request(httpcore, request))
        assert isinstance(response.stream, AsyncIterable)  # an async pool: an async body
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_AsyncBody(response.stream),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


class AsyncGuardedTransport2(httpx2.AsyncBaseTransport):
    """The same for httpx2 over httpcore2 (the MCP SDK's HTTP client)."""

    def __init__(self, **options: Unpack[TransportOptions]) -> None:
        self._pool = httpcore2.AsyncConnectionPool(
            network_backend=AsyncGuardedBackend2(httpcore2.AnyIOBackend()),
            **_pool_options(options, httpx2.create_ssl_context),
        )

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        with mapped_errors(HTTPX2_ERRORS):
            response = await self._pool.handle_async_request(_core_request(httpcore2, request))
        assert isinstance(response.stream, AsyncIterable)
        return httpx2.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_AsyncBody2(response.stream),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()
