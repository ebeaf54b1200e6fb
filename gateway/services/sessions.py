"""Upstream MCP sessions reused across calls, keyed by (server, exact credential), closed
after an idle period or at the first failure.

- Remote upstreams (streamable HTTP, SSE, websocket): one session per key, shared by every
  call (the SDK's Client multiplexes concurrent requests). A call that times out leaves it
  open for the others; a transport failure closes it (the next call reconnects).
- stdio upstreams: up to MCPCONTROL_GATEWAY_STDIO_PROCESSES processes per key, each lent to
  one call at a time (callers beyond wait, under their own timeout). A process that died is
  dropped when next picked and a new one started; a call that times out or fails has its
  process group killed at once, as a per-call process would have had.

A key is the server and everything the credential resolved to (URL and headers, or command,
arguments, environment and working directory), so agents with different credentials never
share a session or a process; a rotated or refreshed credential simply opens a new one and
the old one idles out. Both idle out after MCPCONTROL_GATEWAY_IDLE_SECONDS without a call in
progress, and end with the worker (the gateway's task group is cancelled at shutdown, which
kills every process group). The SDK's Client must be entered and left in one task, so each
session lives in a holder task of the gateway's task group; callers only borrow it.
"""

import dataclasses
import hashlib
import json
import math
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
from anyio.abc import Process, TaskGroup
from django.conf import settings
from mcp import Client
from mcp.client import Transport
from mcp_types import Implementation

from mcpcontrol.lib.http import SharedPool
from servers.mcp_client import Target
from servers.mcp_client.errors import Observed
from servers.mcp_client.probe import _transport
from servers.mcp_client.stdio import stdio_client

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
    borrowers: int = 0  # calls in progress: the idle clock runs only at 0
    process: Process | None = None  # a stdio session's child
    scope: anyio.CancelScope | None = None  # the holder's: cancelling it kills the process

    @property
    def alive(self) -> bool:
        return not self.closed and (self.process is None or self.process.returncode is None)


def session_key(server_id: int, target: Target) -> str:
    material = json.dumps([
        str(server_id), target.transport, target.url, sorted(target.headers.items()),
        target.command, target.args, sorted(target.env.items()), target.cwd,
    ])  # fmt: skip
    return hashlib.sha256(material.encode()).hexdigest()


class SessionPool:
    def __init__(self, *, tg: TaskGroup, http: SharedPool) -> None:
        self.tg, self.http = tg, http
        self.held: dict[str, list[_Held]] = {}  # key -> its open sessions (remote: one)
        self.slots: dict[str, anyio.Semaphore] = {}  # stdio key -> its process budget

    def _transport(self, target: Target, held: _Held) -> Transport:
        if target.transport == "stdio":

            def started(process: Process) -> None:
                held.process = process

            return stdio_client(command=target.command, args=target.args, env=target.env,
                                cwd=target.cwd, errlog=subprocess.DEVNULL, started=started)  # fmt: skip
        # The HTTP read timeout must outlast any one call: a read timing out would close
        # the shared session under every call in it. Calls are bounded by their callers.
        lasting = dataclasses.replace(target, timeout=READ_TIMEOUT)
        return _transport(lasting, self.http, held.observed, subprocess.DEVNULL)

    async def _hold(self, key: str, target: Target, held: _Held) -> None:
        """Open the session, lend it until it idles or is discarded, close it."""
        try:
            with anyio.CancelScope() as held.scope:
                transport = self._transport(target, held)
                # The handshake is bounded; the scope wraps the whole session (SDK task
                # groups must be left inside the scopes they were entered in), then stops.
                deadline = anyio.current_time() + target.init_timeout
                with anyio.CancelScope(deadline=deadline) as handshake:
                    async with Client(transport, cache=None, client_info=CLIENT_INFO) as client:
                        handshake.deadline = math.inf
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
            self._forget(key, held)

    def _forget(self, key: str, held: _Held) -> None:
        holders = self.held.get(key, [])
        if held in holders:
            holders.remove(held)
        if not holders:
            self.held.pop(key, None)
            slots = self.slots.get(key)
            if slots is not None and slots.value == slots.max_value:  # no call holds one
                del self.slots[key]

    @staticmethod
    async def _lend(held: _Held) -> None:
        while not held.closed:
            held.used = anyio.Event()
            with anyio.move_on_after(settings.MCPCONTROL_GATEWAY_IDLE_SECONDS) as idle:
                await held.used.wait()
            if idle.cancelled_caught and held.borrowers == 0:
                return

    def _open(self, key: str, target: Target) -> _Held:
        held = _Held()
        self.held.setdefault(key, []).append(held)
        self.tg.start_soon(self._hold, key, target, held)
        return held

    def _idle_process(self, key: str) -> _Held | None:
        """A kept process no call is using; dead ones met on the way are dropped."""
        for held in list(self.held.get(key, [])):
            if not held.alive:
                self.discard(held)
            elif held.borrowers == 0:
                return held
        return None

    @asynccontextmanager
    async def session(self, server_id: int, target: Target) -> AsyncIterator[_Held]:
        """Lend the session for one call: ready, or closed with `error` (client None).
        A stdio process is lent to this call alone; waiting for one counts against the
        caller's own timeout."""
        key = session_key(server_id, target)
        if target.transport != "stdio":
            holders = [h for h in self.held.get(key, []) if not h.closed]
            async with self._borrowed(holders[0] if holders else self._open(key, target)) as held:
                yield held
            return
        limit = settings.MCPCONTROL_GATEWAY_STDIO_PROCESSES
        slots = self.slots.setdefault(key, anyio.Semaphore(limit, max_value=limit))
        async with slots:  # at most `limit` calls, so processes, per key at once
            held = self._idle_process(key) or self._open(key, target)
            async with self._borrowed(held):
                yield held

    @asynccontextmanager
    async def _borrowed(self, held: _Held) -> AsyncIterator[_Held]:
        held.borrowers += 1
        held.used.set()
        try:
            await held.ready.wait()
            yield held
        finally:
            held.borrowers -= 1
            held.used.set()  # the idle clock restarts when the call ends

    def discard(self, held: _Held) -> None:
        """Close a session that failed (the next call reconnects). A stdio process is killed
        at once: the holder's scope is cancelled, so its process group gets SIGKILL."""
        held.closed = True
        held.used.set()
        if held.process is not None and held.scope is not None:
            held.scope.cancel()
