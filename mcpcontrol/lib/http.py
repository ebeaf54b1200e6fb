"""The only place outbound HTTP clients are made: every client has a timeout and the URL guard.

Callers pass the URL through `guarded()` (or use the helpers below) before sending; the
clients refuse redirects to places the guard would refuse by checking each request.
"""

import httpx

from mcpcontrol.lib.urlguard import BlockedUrl, check_url

DEFAULT_TIMEOUT_SECONDS = 10.0
USER_AGENT = "mcpcontrol/1.0"

__all__ = ["BlockedUrl", "async_client", "client", "guarded"]


def guarded(url: str) -> str:
    return check_url(url)


def _check_request(request: httpx.Request) -> None:
    check_url(str(request.url))


async def _acheck_request(request: httpx.Request) -> None:
    check_url(str(request.url))


def client(*, timeout: float = DEFAULT_TIMEOUT_SECONDS, **kwargs: object) -> httpx.Client:
    """A synchronous client whose every request (redirects included) passes the URL guard."""
    hooks = {"request": [_check_request]}
    headers = {"User-Agent": USER_AGENT, **(kwargs.pop("headers", None) or {})}  # type: ignore[dict-item]
    return httpx.Client(timeout=timeout, event_hooks=hooks, headers=headers, **kwargs)  # type: ignore[arg-type]


def async_client(
    *, timeout: float = DEFAULT_TIMEOUT_SECONDS, **kwargs: object
) -> httpx.AsyncClient:
    """The async twin of client(); shared by the health engine across concurrent checks."""
    hooks = {"request": [_acheck_request]}
    headers = {"User-Agent": USER_AGENT, **(kwargs.pop("headers", None) or {})}  # type: ignore[dict-item]
    return httpx.AsyncClient(timeout=timeout, event_hooks=hooks, headers=headers, **kwargs)  # type: ignore[arg-type]
