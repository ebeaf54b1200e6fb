"""The only place outbound HTTP clients are made: every client has a timeout and the URL guard.

Callers pass the URL through `guarded()` (or use the helpers below) before sending; the
clients refuse redirects to places the guard would refuse by checking each request, and
their transports (lib/transports) connect only to addresses the guard checked (lib/netguard),
so a name that resolves elsewhere between the check and the connect (DNS rebinding) is
refused too.
"""

from collections.abc import Awaitable, Callable
from typing import Unpack

import httpx
import httpx2
from django.conf import settings

from mcpcontrol.lib.transports import (
    AsyncGuardedTransport,
    AsyncGuardedTransport2,
    GuardedTransport,
    TransportOptions,
)
from mcpcontrol.lib.urlguard import BlockedUrl, check_url

DEFAULT_TIMEOUT_SECONDS = 10.0
USER_AGENT = "mcpcontrol/1.0"

__all__ = [
    "BlockedUrl",
    "SharedPool",
    "async_client",
    "async_guarded_transport",
    "client",
    "guarded",
    "guarded_transport",
    "mcp_client",
]


def guarded(url: str) -> str:
    return check_url(url)


def _check_request(request: httpx.Request) -> None:
    check_url(str(request.url))


async def _acheck_request(request: httpx.Request) -> None:
    check_url(str(request.url))


def _transport_options(kwargs: dict[str, object]) -> TransportOptions:
    """The options httpx.Client would have given the transport it builds (we build it)."""
    if "proxy" in kwargs or "mounts" in kwargs:
        # A proxy or mounted transport would make the connection: the guard would be bypassed.
        raise TypeError("outbound clients take no proxy or mounts (the URL guard needs the pool)")
    return {key: kwargs[key] for key in TransportOptions.__optional_keys__ if key in kwargs}  # type: ignore[return-value]


def guarded_transport(**options: Unpack[TransportOptions]) -> GuardedTransport:
    """A transport whose pool connects only to checked addresses (lib/netguard)."""
    return GuardedTransport(**options)


def async_guarded_transport(**options: Unpack[TransportOptions]) -> AsyncGuardedTransport:
    return AsyncGuardedTransport(**options)


def default_timeout() -> float:
    """MCPCONTROL_HTTP_TIMEOUT_SECONDS: how long an OAuth or discovery request may take."""
    return float(getattr(settings, "MCPCONTROL_HTTP_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS))


def client(*, timeout: float | None = None, **kwargs: object) -> httpx.Client:
    """A synchronous client whose every request (redirects included) passes the URL guard."""
    timeout = default_timeout() if timeout is None else timeout
    hooks = {"request": [_check_request]}
    headers = {"User-Agent": USER_AGENT, **(kwargs.pop("headers", None) or {})}  # type: ignore[dict-item]
    kwargs.setdefault("transport", guarded_transport(**_transport_options(kwargs)))
    return httpx.Client(timeout=timeout, event_hooks=hooks, headers=headers, **kwargs)  # type: ignore[arg-type]


def async_client(*, timeout: float | None = None, **kwargs: object) -> httpx.AsyncClient:
    """The async twin of client(); shared by the health engine across concurrent checks."""
    timeout = default_timeout() if timeout is None else timeout
    hooks = {"request": [_acheck_request]}
    headers = {"User-Agent": USER_AGENT, **(kwargs.pop("headers", None) or {})}  # type: ignore[dict-item]
    kwargs.setdefault("transport", async_guarded_transport(**_transport_options(kwargs)))
    return httpx.AsyncClient(timeout=timeout, event_hooks=hooks, headers=headers, **kwargs)  # type: ignore[arg-type]


# --- MCP transports -----------------------------------------------------------------------
# The MCP SDK (2.x) speaks httpx2, not httpx, so its clients are made here too.


class SharedPool(httpx2.AsyncBaseTransport):
    """One connection pool shared by many short-lived MCP clients (one per health check).

    The SDK's SSE transport closes the client it is given; closing a client closes its
    transport, so this wrapper ignores aclose() and the owner calls close_pool() instead.
    """

    def __init__(self, *, max_connections: int) -> None:
        limits = httpx2.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self._pool = AsyncGuardedTransport2(limits=limits)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        return await self._pool.handle_async_request(request)

    async def aclose(self) -> None:
        """Per-check clients close; the pool outlives them (see close_pool)."""

    async def close_pool(self) -> None:
        await self._pool.aclose()


async def _acheck_request2(request: httpx2.Request) -> None:
    # resolve=False: no blocking DNS lookup on the event loop per request. This catches a
    # scheme or literal address early (a redirect, an SSE endpoint event); names are checked
    # where it counts, on the addresses the pool connects to (AsyncGuardedBackend2).
    check_url(str(request.url), resolve=False)


def mcp_client(
    *,
    pool: SharedPool,
    headers: dict[str, str],
    timeout: float,
    on_response: Callable[[httpx2.Response], Awaitable[None]] | None = None,
) -> httpx2.AsyncClient:
    """An httpx2 client for one MCP session: its own headers and timeout, the shared pool."""
    hooks: dict[str, list[Callable[..., Awaitable[None]]]] = {"request": [_acheck_request2]}
    if on_response is not None:
        hooks["response"] = [on_response]
    return httpx2.AsyncClient(
        transport=pool,
        timeout=timeout,
        headers={"User-Agent": USER_AGENT, **headers},
        event_hooks=hooks,
        trust_env=False,
    )
