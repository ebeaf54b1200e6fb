"""Long-lived connections to /mcp/agents/{agent_id} (docs/gateway.md, "Open streams"):

- the legacy SSE pair for older clients, on the SDK's SseServerTransport:
  `GET .../sse` holds the event stream (its first event, `endpoint`, names the POST URL) and
  `POST .../messages?session_id=...` carries the client's messages. Every request of the
  pair is authenticated by the gateway (mcp.Gateway.__call__) before it reaches here, and a
  session answers only POSTs for its own agent.
- `notifications/tools/list_changed`, sent to every open stream of an agent when the tools
  it is offered change: on the SSE pair (handshake-era clients), on a standalone GET stream
  of the streamable endpoint (handshake-era clients of the stateless endpoint), and on a
  `subscriptions/listen` stream (2026-07-28 clients, which ask for one by a POST: no session).

Change detection is ToolWatch: every POLL_SECONDS, one fingerprint query (the hot path's,
gateway.services.hotpath) per agent with an open stream, however many streams it has; the
catalog is rebuilt only when that fingerprint moved (or every REBUILD_SECONDS, for what the
fingerprint cannot see), and streams are told only when the offered tools actually differ.

An SSE session lives in the worker process holding its GET: a POST reaching another worker
is relayed to its owner by SessionRelay (a Unix socket per worker in the run folder), so the
pair works under `make run`'s several workers; across hosts it needs sticky routing.
"""

import base64
import contextlib
import json
import logging
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import anyio
import mcp_types as types
from anyio.streams.buffered import BufferedByteReceiveStream
from asgiref.sync import sync_to_async
from django.conf import settings
from mcp.server.lowlevel.server import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.server.sse import SseServerTransport
from mcp.server.subscriptions import ListenHandler
from mcp.shared.message import SessionMessage
from mcp.shared.subscriptions import ServerEvent, ToolsListChanged
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from sse_starlette import EventSourceResponse
from sse_starlette.sse import AppStatus

from gateway.services.catalog import Catalog, agent_catalog
from gateway.services.hotpath import OWNER, View, fingerprint, fingerprint_query
from mcpcontrol.lib.queries import CompiledQuery
from servers.models import Agent

logger = logging.getLogger(__name__)

POLL_SECONDS = 2.0  # how often the agents with an open stream are checked (one query each)
IDLE_FACTOR = 4.0  # after a poll, wait at least this many times as long as it took
REBUILD_SECONDS = 30.0  # the catalog is rebuilt at least this often while a stream is open
PING_SECONDS = 15.0  # a comment line on idle streams, so proxies do not cut them
MAX_BODY = 4 * 1024 * 1024  # an SSE POST body, as the SDK's transports bound it
RELAY_SECONDS = 10.0  # a sibling worker must take a relayed POST within this
RELAYED = "mcpcontrol.relayed"  # scope key: this request came from a sibling (never relay it on)
LIST_CHANGED = "notifications/tools/list_changed"


class GatewayServer(Server[Any]):
    """The SDK's low-level server, announcing `tools.listChanged` to handshake-era clients
    (2026-07-28 clients derive it from `subscriptions/listen` being served)."""

    def create_initialization_options(
        self, notification_options: NotificationOptions | None = None, *args: Any, **kwargs: Any
    ) -> InitializationOptions:
        options = notification_options or NotificationOptions(tools_changed=True)
        return super().create_initialization_options(options, *args, **kwargs)


def signature(catalog: Catalog) -> str:
    """What a client's tools/list would show, in a comparable form (order aside)."""
    return json.dumps(sorted(catalog.tools, key=lambda t: str(t.get("name"))),
                      sort_keys=True, default=str)  # fmt: skip


@dataclass(kw_only=True)
class _Seen:
    """One watched agent: what its streams were last told about."""

    agent: Agent
    state: tuple[Any, ...]
    signature: str
    checked: float  # monotonic: when the catalog was last built
    query: Any = None  # the fingerprint query, built and compiled on the first poll
    listeners: dict[object, Callable[[], None]] = field(default_factory=dict)


class ToolWatch:
    """Tells the open streams of an agent when the tools it is offered change."""

    def __init__(self) -> None:
        self.seen: dict[int, _Seen] = {}

    def subscribe(self, view: View, listener: Callable[[], None]) -> Callable[[], None]:
        """Call `listener` (synchronous, must not block) after each change of the view's
        agent's tools, from now on; the baseline is the view the stream was admitted with."""
        agent_id = view.agent.pk
        seen = self.seen.get(agent_id)
        if seen is None:
            seen = self.seen[agent_id] = _Seen(
                agent=view.agent, state=view.state, signature=signature(view.catalog),
                checked=time.monotonic(),
            )  # fmt: skip
        token = object()
        seen.listeners[token] = listener

        def unsubscribe() -> None:
            current = self.seen.get(agent_id)
            if current is not None:
                current.listeners.pop(token, None)
                if not current.listeners:
                    del self.seen[agent_id]

        return unsubscribe

    async def run(self) -> None:
        """The poll loop (a task of the gateway's lifespan)."""
        spent = 0.0
        while True:
            # Many watched agents make a long poll: its queries share the request thread
            # (sync_to_async), so the pause grows with it and polls take at most 1/(1+IDLE).
            await anyio.sleep(max(POLL_SECONDS, IDLE_FACTOR * spent))
            started = time.monotonic()
            try:
                await self.poll()
            except Exception:  # a failed poll (database away) must not end the loop
                logger.exception("could not check the agents' tool lists")
            spent = time.monotonic() - started

    async def poll(self) -> None:
        for agent_id, seen in list(self.seen.items()):
            changed = await sync_to_async(self._check)(seen)
            if changed and self.seen.get(agent_id) is seen:
                for listener in list(seen.listeners.values()):
                    listener()

    @staticmethod
    def _check(seen: _Seen) -> bool:
        """Whether the agent's offered tools differ from what its streams last saw: one
        query, plus a catalog build when the fingerprint moved or REBUILD_SECONDS passed."""
        if seen.query is None:
            seen.query = CompiledQuery(fingerprint_query(agent=seen.agent, key_id=None))
        state = fingerprint(seen.query, keyed=False)
        if state and state[OWNER] != seen.agent.owner_id:  # given to another owner
            seen.agent = Agent.objects.select_related("owner").get(pk=seen.agent.pk)
            seen.query = CompiledQuery(fingerprint_query(agent=seen.agent, key_id=None))
            state = fingerprint(seen.query, keyed=False)
        now = time.monotonic()
        if not state or (state == seen.state and now - seen.checked < REBUILD_SECONDS):
            return False  # unchanged, or the agent is gone (its streams' requests are refused)
        seen.state, seen.checked = state, now
        current = signature(agent_catalog(agent=seen.agent))
        changed, seen.signature = current != seen.signature, current
        return changed


class Mailbox:
    """A level trigger between ToolWatch (synchronous) and a stream's task: changes made
    while the stream is busy collapse into one notification."""

    def __init__(self) -> None:
        self._event = anyio.Event()

    def notify(self) -> None:
        self._event.set()

    async def wait(self, timeout: float) -> bool:
        """True when notified (and re-armed), False after `timeout` seconds without."""
        with anyio.move_on_after(timeout):
            await self._event.wait()
            self._event = anyio.Event()
            return True
        return False


class AgentBus:
    """The SDK's SubscriptionBus for `subscriptions/listen`, scoped to the requesting agent:
    a listener subscribes to the agent whose view the listen request was admitted with."""

    def __init__(self, watch: ToolWatch, current: Callable[[], View]) -> None:
        self.watch, self.current = watch, current

    async def publish(self, event: ServerEvent) -> None:  # events come from ToolWatch only
        return None

    def subscribe(self, listener: Callable[[ServerEvent], None]) -> Callable[[], None]:
        return self.watch.subscribe(self.current(), lambda: listener(ToolsListChanged()))


def _notification() -> SessionMessage:
    return SessionMessage(types.JSONRPCNotification(jsonrpc="2.0", method=LIST_CHANGED))


@dataclass(kw_only=True)
class SseSession:
    agent_id: int
    transport: SseServerTransport
    handshake: bool = False  # the client sent notifications/initialized: bare notifications ok


ASGI = Callable[..., Awaitable[None]]


class Streams:
    """The long-lived parts of the endpoint; `handle` takes the requests that are theirs."""

    def __init__(
        self, *, server: Server[Any], watch: ToolWatch, listen: ListenHandler, app: ASGI
    ) -> None:
        self.server, self.watch, self.listen = server, watch, listen
        self.sse: dict[str, SseSession] = {}  # session id (hex) -> its session in this worker
        self.relay = SessionRelay(app=app)

    async def run(self) -> None:
        """The lifespan's part: the tools/list_changed poll, the sibling relay, the drain."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(self.watch.run)
            tg.start_soon(self._drain)
            await tg.start(self.relay.serve)

    async def _drain(self) -> None:
        """End the listen streams when the server starts to stop. uvicorn waits for open
        connections before it runs the lifespan's shutdown (which flushes the ToolCall
        rows), and gunicorn kills a worker still waiting after graceful_timeout. The SSE
        streams (sse_starlette's) end by themselves on that signal; listen streams do not."""
        while not _server_stopping():
            await anyio.sleep(0.5)
        self.listen.close()

    async def handle(self, scope: Any, receive: Any, send: Any, *, view: View, tail: str) -> bool:
        """Serve the request if it is one of ours (True), else leave it to the SDK (False).
        The request is already authenticated as `view`'s agent."""
        method = scope.get("method", "")
        if tail == "sse" and method == "GET":
            await self.sse_stream(scope, receive, send, view=view)
        elif tail == "messages" and method == "POST":
            await self.sse_post(scope, receive, send, agent_id=view.agent.pk)
        elif tail:
            await _plain(send, 405, "method not allowed")
        elif method == "GET" and b"text/event-stream" in _header(scope, b"accept"):
            await self.get_stream(scope, receive, send, view=view)
        else:
            return False
        return True

    def labelled(self, scope: Any, send: Any) -> Any:
        """`send`, adding an Mcp-Session-Id to the answer of a handshake-era POST that has
        none. The endpoint is stateless: the id is a random label with nothing behind it (every
        worker takes requests carrying it, the SDK's stateless transport ignores it); it is
        there because the SDK's client, like others, opens its GET stream only once it has one.
        """
        version = _header(scope, b"mcp-protocol-version").decode("latin-1")
        if (scope.get("method") != "POST" or _header(scope, b"mcp-session-id")
                or (version and version not in HANDSHAKE_PROTOCOL_VERSIONS)):  # fmt: skip
            return send
        label = uuid.uuid4().hex.encode()

        async def labelling(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), (b"mcp-session-id", label)]
                message = {**message, "headers": headers}
            await send(message)

        return labelling

    async def get_stream(self, scope: Any, receive: Any, send: Any, *, view: View) -> None:
        """The streamable endpoint's standalone GET stream: the stateless endpoint has no
        session, so this stream carries only tools/list_changed (to any client of the agent)."""
        mailbox = Mailbox()
        unsubscribe = self.watch.subscribe(view, mailbox.notify)

        async def events() -> AsyncIterator[dict[str, str]]:
            while True:
                if await mailbox.wait(PING_SECONDS):
                    yield {"event": "message",
                           "data": _notification().message.model_dump_json(by_alias=True,
                                                                          exclude_unset=True)}  # fmt: skip

        try:
            await EventSourceResponse(events(), ping=int(PING_SECONDS))(scope, receive, send)
        finally:
            unsubscribe()

    async def sse_stream(self, scope: Any, receive: Any, send: Any, *, view: View) -> None:
        """GET .../sse: one SSE session, served by the same MCP server as the streamable
        endpoint until the client goes away."""
        agent_id = view.agent.pk
        transport = SseServerTransport(f"/mcp/agents/{agent_id}/messages")
        async with transport.connect_sse(scope, receive, send) as (read, write):
            # One transport per connection: its only session is this one.
            [session_id] = transport._read_stream_writers
            session = SseSession(agent_id=agent_id, transport=transport)
            self.sse[session_id.hex] = session
            mailbox = Mailbox()
            unsubscribe = self.watch.subscribe(view, mailbox.notify)

            async def tell() -> None:
                with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
                    while True:
                        if await mailbox.wait(PING_SECONDS) and session.handshake:
                            await write.send(_notification())

            try:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(tell)
                    options = self.server.create_initialization_options()
                    await self.server.run(read, write, options)
                    tg.cancel_scope.cancel()
            finally:
                unsubscribe()
                self.sse.pop(session_id.hex, None)

    async def sse_post(self, scope: Any, receive: Any, send: Any, *, agent_id: int) -> None:
        """POST .../messages?session_id=...: one client message into its session. Another
        agent's session (or one this worker does not hold, and no sibling does) is 404."""
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > MAX_BODY:
                await _plain(send, 413, "message too large")
                return
        session_id = _query_param(scope, "session_id")
        session = self.sse.get(session_id)
        if session is None and not scope.get(RELAYED):
            status, text, content_type = await self.relay.forward(scope, body)
            await _plain(send, status, text, content_type)
            return
        await self.deliver(scope, send, body=body, session=session, agent_id=agent_id)

    async def deliver(
        self, scope: Any, send: Any, *, body: bytes, session: SseSession | None, agent_id: int
    ) -> None:
        if session is None or session.agent_id != agent_id:  # another agent's: as if none
            await _plain(send, 404, "Could not find session")
            return
        if _method_of(body) == "notifications/initialized":
            session.handshake = True
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if sent:  # the body was read already: nothing more will come
                await anyio.sleep_forever()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await session.transport.handle_post_message(scope, replay, send)


def _server_stopping() -> bool:
    """uvicorn was told to stop (SIGTERM/SIGINT): sse_starlette's flag, or the server's own,
    found as sse_starlette finds it (its signal handler is a method of the server)."""
    if AppStatus.should_exit:
        return True
    server = getattr(signal.getsignal(signal.SIGTERM), "__self__", None)
    return bool(getattr(server, "should_exit", False))


def _method_of(body: bytes) -> str | None:
    try:
        message = json.loads(body)
    except ValueError:
        return None
    return message.get("method") if isinstance(message, dict) else None


def _header(scope: Any, name: bytes) -> bytes:
    return b",".join(v for k, v in scope.get("headers", []) if k.lower() == name)


def _query_param(scope: Any, name: str) -> str:
    query: bytes = scope.get("query_string", b"")
    value = parse_qs(query.decode("latin-1")).get(name, [""])[0]
    try:
        return uuid.UUID(hex=value).hex  # the form the sessions are held under
    except ValueError:
        return value


async def _plain(send: Any, status: int, text: str, content_type: str = "") -> None:
    """An answer of ours: errors in the endpoint's envelope, the rest as text."""
    if not content_type and status >= 400:
        text = json.dumps({"error": _ERRORS.get(status, "bad_request"), "message": text})
        content_type = "application/json"
    payload = text.encode()
    headers = [(b"content-type", (content_type or "text/plain; charset=utf-8").encode()),
               (b"content-length", str(len(payload)).encode())]  # fmt: skip
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


_ERRORS = {404: "not_found", 405: "method_not_allowed", 413: "too_large", 502: "bad_gateway"}


class SessionRelay:
    """POSTs for SSE sessions held by a sibling worker process of the same host.

    Each worker listens on a Unix socket in RUN_DIR/gateway-relay (the folder and sockets
    are the process user's alone). A POST whose session this worker does not hold is passed,
    whole (path, query, headers, body), to each sibling in turn; a sibling runs it through its
    own gateway (so it is authenticated again there, and bound to the session's agent) and
    the first answer other than 404 is the answer. A socket nobody answers on is a dead
    worker's: removed.
    """

    def __init__(self, *, app: ASGI) -> None:
        self.app = app
        self.path: Path | None = None

    @staticmethod
    def folder() -> Path:
        return Path(settings.RUN_DIR) / "gateway-relay"

    async def serve(self, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        folder = self.folder()
        path = folder / f"{os.getpid()}-{uuid.uuid4().hex[:8]}.sock"
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            listener = await anyio.create_unix_listener(path)
            os.chmod(path, 0o600)
        except OSError:  # the gateway still serves; SSE then needs one worker or sticky routing
            logger.exception("cannot listen on %s: SSE POSTs are not relayed between workers", path)
            task_status.started()
            return
        self.path = path
        task_status.started()
        try:
            await listener.serve(self._answer)
        finally:
            with contextlib.suppress(OSError):
                self.path.unlink()

    async def _answer(self, stream: Any) -> None:
        try:
            await self._relayed(stream)
        except Exception:  # one bad relay must not end the listener (nor the worker's lifespan)
            logger.exception("a relayed SSE POST failed")

    async def _relayed(self, stream: Any) -> None:
        async with stream:
            reader = BufferedByteReceiveStream(stream)
            with anyio.move_on_after(RELAY_SECONDS):
                request = json.loads(await reader.receive_until(b"\n", 2 * MAX_BODY))
                body = base64.b64decode(request["body"])
                scope = {
                    "type": "http", "http_version": "1.1", "method": "POST", "scheme": "http",
                    "path": request["path"], "raw_path": request["path"].encode(),
                    "query_string": request["query"].encode("latin-1"), "root_path": "",
                    "headers": [(k.encode("latin-1"), v.encode("latin-1"))
                                for k, v in request["headers"]],
                    "client": None, "server": None, RELAYED: True,
                }  # fmt: skip
                answer: dict[str, Any] = {"status": 502, "body": b"", "type": b""}

                async def receive() -> dict[str, Any]:
                    return {"type": "http.request", "body": body, "more_body": False}

                async def send(message: dict[str, Any]) -> None:
                    if message["type"] == "http.response.start":
                        answer["status"] = message["status"]
                        answer["type"] = dict(message.get("headers", [])).get(b"content-type", b"")
                    elif message["type"] == "http.response.body":
                        answer["body"] += message.get("body", b"")

                await self.app(scope, receive, send)
                reply = {"status": answer["status"], "text": answer["body"].decode(errors="replace"),
                         "type": answer["type"].decode("latin-1")}  # fmt: skip
                await stream.send(json.dumps(reply).encode() + b"\n")

    async def forward(self, scope: Any, body: bytes) -> tuple[int, str, str]:
        """The owner's answer to this POST, or 404 when no sibling holds its session."""
        request = json.dumps({
            "path": scope["path"], "query": scope.get("query_string", b"").decode("latin-1"),
            "headers": [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]],
            "body": base64.b64encode(body).decode(),
        }).encode() + b"\n"  # fmt: skip
        for path in sorted(self.folder().glob("*.sock")):
            if path == self.path:
                continue
            try:
                with anyio.fail_after(RELAY_SECONDS):
                    async with await anyio.connect_unix(path) as stream:
                        await stream.send(request)
                        reader = BufferedByteReceiveStream(stream)
                        reply = json.loads(await reader.receive_until(b"\n", 2 * MAX_BODY))
            except (ConnectionRefusedError, FileNotFoundError):
                with contextlib.suppress(OSError):
                    path.unlink()  # a worker that is gone
                continue
            except (OSError, TimeoutError, ValueError, anyio.IncompleteRead,
                    anyio.DelimiterNotFound, anyio.EndOfStream):  # fmt: skip
                logger.warning("the gateway worker at %s did not answer a relayed POST", path)
                continue
            if reply["status"] != 404:
                return int(reply["status"]), str(reply["text"]), str(reply["type"])
        return 404, "Could not find session", ""
