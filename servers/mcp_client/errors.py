"""Turning whatever a failed session raised into one distinct outcome and a readable message.

The SDK reports most HTTP-level failures as JSON-RPC errors and wraps transport failures in
exception groups, so the HTTP status is observed on the wire (a response hook) and groups
are flattened before the leaves are matched.
"""

import socket
import ssl
from collections.abc import Iterator

import httpx2
from mcp.shared.exceptions import MCPError
from websockets.exceptions import InvalidHandshake, InvalidStatus

from mcpcontrol.lib.urlguard import BlockedUrl

AUTH_STATUSES = frozenset({401, 403})


class Observed:
    """What the HTTP layer saw during one session: the first auth rejection, if any."""

    def __init__(self) -> None:
        self.auth_status: int | None = None
        self.challenge = ""

    async def on_response(self, response: httpx2.Response) -> None:
        if response.status_code in AUTH_STATUSES and self.auth_status is None:
            self.auth_status = response.status_code
            self.challenge = response.headers.get("www-authenticate", "")


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc


def _auth_message(status: int, challenge: str) -> str:
    message = f"upstream answered HTTP {status}"
    return f"{message}; WWW-Authenticate: {challenge}" if challenge else message


def _classify_leaf(exc: BaseException) -> tuple[str, str] | None:
    if isinstance(exc, BlockedUrl):  # refused at connect time; worded as the pre-check words it
        return "unreachable", f"URL refused: {exc}"
    # TimeoutError before OSError: it is an OSError subclass.
    if isinstance(exc, httpx2.TimeoutException | TimeoutError):
        return "timeout", f"timed out: {exc}"
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        if status in AUTH_STATUSES:
            return "auth_required", _auth_message(
                status, exc.response.headers.get("WWW-Authenticate", "")
            )
        return "protocol_error", f"websocket upgrade refused with HTTP {status}"
    if isinstance(exc, FileNotFoundError):
        return "unreachable", f"command not found: {exc.filename or exc}"
    if isinstance(
        exc, httpx2.ConnectError | ssl.SSLError | socket.gaierror | ConnectionError | OSError
    ):
        return "unreachable", f"cannot connect: {exc}"
    if isinstance(exc, httpx2.HTTPStatusError):
        return "protocol_error", f"HTTP {exc.response.status_code} from {exc.request.url}"
    if isinstance(exc, InvalidHandshake):
        return "protocol_error", f"websocket handshake failed: {exc}"
    return None


def classify(exc: BaseException, observed: Observed) -> tuple[str, str]:
    """(outcome, message) for a failed session; protocol_error when nothing more specific fits."""
    if observed.auth_status is not None:
        return "auth_required", _auth_message(observed.auth_status, observed.challenge)
    leaves = list(_leaves(exc))
    for leaf in leaves:
        found = _classify_leaf(leaf)
        if found is not None:
            return found
    first = leaves[0] if leaves else exc
    if isinstance(first, MCPError):
        return "protocol_error", f"not a working MCP server: {first.message} (code {first.code})"
    return "protocol_error", f"not a working MCP server: {type(first).__name__}: {first}"
