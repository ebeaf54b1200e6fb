"""Upstream MCP sessions reused across calls: one per (server, exact credential), remote
transports only, closed after an idle period or at the first transport failure.

A session is keyed by the URL and the headers the credential resolved to, so agents with
different credentials never share one; a rotated or refreshed credential simply opens a new
session and the old one idles out. The SDK's Client must be entered and left in one task,
so each session lives in a holder task of the gateway's task group; callers only borrow
the open Client (it multiplexes concurrent requests).
"""

import dataclasses
import hashlib
import json
import math
import subprocess
from dataclasses import dataclass, field

import anyio
from anyio.abc import TaskGroup
from mcp import Client
from mcp_types import Implementation

from mcpcontrol.lib.http import SharedPool
from servers.mcp_client import Target
from servers.mcp_client.errors import Observed
from servers.mcp_client.probe import _transport

IDLE_SECONDS = 60.0
READ_TIMEOUT = 3600.0
CLIENT_INFO = Implementation(name="mcpcontrol-gateway", version="1.0")


@dataclass(eq=False)
class _Held:
    observed: Observed = field(default_factory=Observed)
    ready: anyio.Event = field(default_factory=anyio.Event)
    used: anyio.Event = field(default_factory=anyio.Event)
    closed: bool = False
    client: Client | None = None
    error: BaseException | None = None


def session_key(server_id: int, target: Target) -> str:
    material = json.dumps([server_id, target.transport, target.url, sorted(target.headers.items())])
    return hashlib.sha256(material.encode()).hexdigest()


class SessionPool:
    def __init__(self, *, tg: TaskGroup, http: SharedPool) -> None:
        self.tg, self.http = tg, http
        self.held: dict[str, _Held] = {}

    async def _hold(self, key: str, target: Target, held: _Held) -> None:
        """Open the session, lend it until it idles IDLE_SECONDS or is discarded, close it."""
        try:
            # The HTTP read timeout must outlast any one call: a read timing out would close
            # the shared session under every call in it. Calls are bounded by their callers.
            lasting = dataclasses.replace(target, timeout=READ_TIMEOUT)
            transport = _transport(lasting, self.http, held.observed, subprocess.DEVNULL)
            # The handshake is bounded; the scope wraps the whole session (SDK task groups
            # must be left inside the scopes they were entered in), then stops counting.
            with anyio.CancelScope(deadline=anyio.current_time() + target.init_timeout) as scope:
                async with Client(transport, cache=None, client_info=CLIENT_INFO) as client:
                    scope.deadline = math.inf
                    held.client = client
                    held.ready.set()
                    await self._lend(held)
            if held.client is None:
                raise TimeoutError(f"no handshake within {target.init_timeout:g}s")
        except Exception as exc:  # reported to the borrowers; the next call opens anew
            held.error = exc
        finally:
            held.closed = True
            held.ready.set()
            if self.held.get(key) is held:
                del self.held[key]

    @staticmethod
    async def _lend(held: _Held) -> None:
        while not held.closed:
            held.used = anyio.Event()
            with anyio.move_on_after(IDLE_SECONDS) as idle:
                await held.used.wait()
            if idle.cancelled_caught:
                return

    async def borrow(self, server_id: int, target: Target) -> _Held:
        key = session_key(server_id, target)
        held = self.held.get(key)
        if held is None or held.closed:
            held = self.held[key] = _Held()
            self.tg.start_soon(self._hold, key, target, held)
        await held.ready.wait()
        held.used.set()
        return held

    def discard(self, held: _Held) -> None:
        """Close a session whose transport failed: the next call reconnects."""
        held.closed = True
        held.used.set()
