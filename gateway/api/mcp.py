"""/mcp/agents/{agent_id}: one MCP endpoint (streamable HTTP) per agent, aggregating the
tools, resources and prompts of every server the agent may use. Served by the ASGI
application (mcpcontrol.asgi).

Built on the SDK's low-level Server and its StreamableHTTPSessionManager in stateless mode
with JSON responses: every POST is authenticated anew, so a revoked key stops at once, and
no session state ties a client to one worker process. A 2026-07-28 tools/call goes to a
second manager that may answer with SSE, so progress can be relayed and a client closing
the stream cancels the call (_manager_for).
"""

import contextlib
import contextvars
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import mcp_types as types
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.utils import timezone
from mcp.server.lowlevel.server import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.subscriptions import ListenHandler
from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE
from mcp.shared.exceptions import MCPError
from mcp.shared.jsonrpc_dispatcher import progress_token_from_params
from mcp_types import INVALID_PARAMS
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError

from gateway.api import fastpath
from gateway.api.streams import AgentBus, GatewayServer, Streams, ToolWatch
from gateway.services import KeyRejected, agent_key_authenticate
from gateway.services.aggregate import (
    UPSTREAM_ERROR,
    Aggregator,
    Kind,
    Listing,
    Unreachable,
    find_prompt,
    find_resource,
    item_key,
    readdress_contents,
    with_client,
)
from gateway.services.capture import arguments_captured
from gateway.services.catalog import ServerRef, auth_refusal_reason, call_target
from gateway.services.hotpath import FLUSH_SECONDS, HotPath, ToolCallBuffer, View
from gateway.services.pages import page
from gateway.services.ratelimit import rate_limit_refusal
from gateway.services.sessions import SessionPool
from gateway.services.upstream import pooled_call
from mcpcontrol.api.permissions import READ_SERVERS
from mcpcontrol.lib.http import SharedPool
from mcpcontrol.lib.ids import ID_PATTERN
from servers.models import Agent

logger = logging.getLogger(__name__)

# The endpoint, and the legacy SSE pair under it (gateway.api.streams).
PATH = re.compile(rf"/mcp/agents/({ID_PATTERN})(?:/(sse|messages))?/?")
POOL_CONNECTIONS = 100
_view: contextvars.ContextVar[View] = contextvars.ContextVar("gateway_view")


class Refused(Exception):
    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


def _jwt_user(raw: str) -> Any:
    auth = JWTAuthentication()
    try:
        token = auth.get_validated_token(raw.encode())
        user = auth.get_user(token)
    except (InvalidToken, TokenError, ObjectDoesNotExist) as exc:
        raise Refused(401, "unauthorized", "invalid or expired token") from exc
    scopes = str(token.payload.get("scope", "")).split()
    if READ_SERVERS not in scopes:
        raise Refused(403, "forbidden", f"the token lacks the {READ_SERVERS!r} scope")
    return user


def authenticate(*, authorization: str, agent_id: int) -> Agent:
    """The agent the request may act as, or Refused.

    1. An agent key (mcpa_...) must be usable (not revoked, not expired) and this agent's:
       another agent's key is 403.
    2. Any other bearer is a JWT of our API: only the agent's owner may use it (their
       agents only, superusers included: the gateway acts with the agent's credentials).
    3. An agent that does not exist, or is not the JWT user's, is 404.
    """
    scheme, _, raw = authorization.partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        raise Refused(401, "unauthorized", "send Authorization: Bearer <agent key>")
    raw = raw.strip()
    if raw.startswith("mcpa_"):
        try:
            key = agent_key_authenticate(raw=raw)
        except KeyRejected as exc:
            raise Refused(401, "unauthorized", "unknown, revoked or expired key") from exc
        if key.agent_id != agent_id:
            if not Agent.objects.filter(pk=agent_id).exists():
                raise Refused(404, "not_found", "no such agent")
            raise Refused(403, "forbidden", "this key belongs to another agent")
        return key.agent
    user = _jwt_user(raw)
    agent = Agent.objects.select_related("owner").filter(pk=agent_id, owner=user).first()
    if agent is None:
        raise Refused(404, "not_found", "no such agent")
    return agent


def _progress_relay(ctx: Any) -> Any:
    """When the call asked for progress (a progressToken in its _meta), a callback that
    relays the upstream's progress to it (on its SSE stream: the streaming manager); else
    None, and the upstream is asked for none (the fast path, gateway.api.fastpath, has no
    ctx: it takes only calls without a progress token)."""
    if ctx is None or progress_token_from_params(ctx.params) is None:
        return None

    async def relay(progress: float, total: float | None, message: str | None) -> None:
        await ctx.session.report_progress(progress, total, message)

    return relay


def _error(reason: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=reason)],
                                is_error=True)  # fmt: skip


class Gateway:
    """The ASGI app behind /mcp/: the MCP server, its session manager and the upstream pool."""

    def __init__(self) -> None:
        self.watch = ToolWatch()  # tools/list_changed for open streams: gateway.api.streams
        self.server: Server[Any] = GatewayServer(
            "mcpcontrol-gateway", version="1.0",
            on_list_tools=self.list_tools, on_call_tool=self.call_tool,
            on_list_resources=self.list_resources, on_read_resource=self.read_resource,
            on_list_resource_templates=self.list_resource_templates,
            on_list_prompts=self.list_prompts, on_get_prompt=self.get_prompt,
            get_tool_input_schema=self.input_schema,
            on_subscriptions_listen=(listen := ListenHandler(AgentBus(self.watch, _view.get))),
        )  # fmt: skip
        self.streams = Streams(server=self.server, watch=self.watch, listen=listen, app=self)
        self.manager: StreamableHTTPSessionManager | None = None
        self.streaming: StreamableHTTPSessionManager | None = None  # tools/call with SSE
        self.aggregator = Aggregator()  # resources/* and prompts/*: gateway.services.aggregate
        self.pool: SharedPool | None = None
        self.sessions: SessionPool | None = None
        self.hot = HotPath(authenticate=authenticate)  # caches: gateway.services.hotpath
        self.calls = ToolCallBuffer()
        self.flush_now = anyio.Event()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        # A manager runs once: each lifespan (a worker, a test's server) gets its own.
        self.manager = StreamableHTTPSessionManager(
            app=self.server, stateless=True, json_response=True
        )
        self.streaming = StreamableHTTPSessionManager(
            app=self.server, stateless=True, json_response=False
        )
        self.pool = SharedPool(max_connections=POOL_CONNECTIONS)
        self.flush_now = anyio.Event()  # an event belongs to one loop: each lifespan its own
        try:
            async with self.manager.run(), self.streaming.run(), anyio.create_task_group() as tg:
                self.sessions = SessionPool(tg=tg, http=self.pool)
                tg.start_soon(self._flusher)
                tg.start_soon(self.streams.run)  # list_changed polls, SSE relay
                yield
                tg.cancel_scope.cancel()  # the pooled upstream sessions end with the worker
        finally:
            await self.pool.close_pool()
            await sync_to_async(self.calls.flush)()  # what the last second buffered

    async def _flusher(self) -> None:
        """Write buffered ToolCall rows every FLUSH_SECONDS, or sooner when a batch is full."""
        while True:
            with anyio.move_on_after(FLUSH_SECONDS):
                await self.flush_now.wait()
            self.flush_now = anyio.Event()
            await sync_to_async(self.calls.flush)()

    def input_schema(self, name: str) -> Any:
        """The tool's inputSchema for the SDK's Mcp-Param-* header check of a 2026-07-28
        tools/call: looked up in the request's catalog (the view is set before the SDK runs),
        instead of the SDK walking tools/list page by page to find it."""
        view = _view.get(None)
        return view.catalog.schemas.get(name) if view is not None else None

    async def list_tools(
        self, ctx: Any, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        catalog = _view.get().catalog
        tools, following = page(catalog.tools, params.cursor if params else None,
                                name_of=lambda t: str(t["name"]))  # fmt: skip
        return types.ListToolsResult(
            tools=[types.Tool.model_validate(t) for t in tools], next_cursor=following
        )

    async def call_tool(
        self, ctx: Any, params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        """1. Find the tool in the agent's catalog (policy applied); 2. resolve how to reach
        its upstream as this agent; 3. call it under the server's timeout; 4. record the call."""
        view, started = _view.get(), time.monotonic()
        agent, catalog = view.agent, view.catalog
        size = len(json.dumps(params.arguments or {}, default=str))
        progress = _progress_relay(ctx)
        route = catalog.routes.get(params.name)
        server_id, outcome = None, "unknown_tool"
        limited = await rate_limit_refusal(agent_id=agent.pk, per_minute=catalog.rate_limit)
        if limited is not None:  # counted across workers (gateway.services.ratelimit)
            outcome, result = "rate_limited", _error(limited)
            server_id = route.server_id if route else None
        elif route is None:
            hidden = catalog.hidden.get(params.name)
            outcome = "denied" if hidden and "policy" in hidden else outcome
            result = _error(f"{params.name}: {hidden or 'no such tool'}")
        else:
            server_id = route.server_id
            outcome, result = await self._routed(agent, route, params, progress)
        self.calls.add(
            agent_id=agent.pk, server_id=server_id, tool=params.name, started=started,
            outcome=outcome, argument_bytes=size,
            arguments=arguments_captured(params.arguments, view.targets.get(server_id or 0)),
        )  # fmt: skip
        if self.calls.full:
            self.flush_now.set()
        return result

    async def _routed(
        self, agent: Agent, route: Any, params: types.CallToolRequestParams, progress: Any = None
    ) -> tuple[str, types.CallToolResult]:
        # Taken before the credential is read: a credential stored after it is never blamed
        # for this call's refusal (one refreshed by this very call is, by the next call's).
        presented_at = timezone.now()
        target = await self._target(route.server_id)
        if isinstance(target, str):
            outcome = "auth_required" if target.startswith("auth:") else "upstream_error"
            return outcome, _error(f"{route.server_name}: {target}")
        assert self.pool is not None and self.sessions is not None, "serves inside its lifespan"
        # Remote sessions and stdio processes alike are pooled (gateway.services.sessions).
        answer = await pooled_call(target, server_id=route.server_id, tool=route.tool,
                                   arguments=params.arguments, sessions=self.sessions,
                                   progress=progress)  # fmt: skip
        if answer.result is not None:
            return answer.outcome, answer.result
        reason = f"{route.server_name}: {answer.reason}"
        if answer.outcome == "auth_required":
            reason = await sync_to_async(auth_refusal_reason)(
                agent=agent, server_id=route.server_id, server_name=route.server_name,
                reason=answer.reason, presented_at=presented_at,
            )  # fmt: skip
        return answer.outcome, _error(reason)

    async def _target(self, server_id: int) -> Any:
        view = _view.get()
        if server_id in view.targets:
            return view.targets[server_id]
        return await sync_to_async(self.hot.target)(view, server_id, call_target)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        match = PATH.fullmatch(scope.get("path", ""))
        if match is None:
            await _json(send, 404, {"error": "not_found", "message": "no such MCP endpoint"})
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            view = await sync_to_async(self.hot.admit)(
                authorization=headers.get("authorization", ""),
                agent_id=Agent._meta.pk.to_python(match[1]),  # int, or ObjectId
            )
        except Refused as exc:
            extra = (
                [(b"www-authenticate", b'Bearer realm="mcpcontrol"')] if exc.status == 401 else []
            )
            await _json(send, exc.status, {"error": exc.error, "message": exc.message}, extra)
            return
        await self.serve(view, scope, receive, send, tail=match[2] or "")

    async def serve(
        self, view: View, scope: Any, receive: Any, send: Any, *, tail: str | None = None
    ) -> None:
        """Answer one MCP request as `view` (also the per-server route's: server_route.py).
        `tail` (the agent endpoint's only): its open streams, gateway.api.streams."""
        if self.manager is None:
            await _json(send, 503, {"error": "unavailable", "message": "the gateway runs only "
                                    "under an ASGI server with lifespan on"})  # fmt: skip
            return
        token = _view.set(view)
        try:
            # The agent endpoint (tail not None) also serves the SSE pair and GET streams.
            if tail is not None and await self.streams.handle(
                scope, receive, send, view=view, tail=tail
            ):
                return
            receive = await fastpath.serve(self, scope, receive, send)  # tools/call, mostly
            if receive is None:
                return
            headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                       for k, v in scope["headers"]}  # fmt: skip
            manager, receive = await self._manager_for(scope, receive, headers)
            if tail is not None:
                send = self.streams.labelled(scope, send)
            await manager.handle_request(scope, receive, send)
        finally:
            _view.reset(token)

    async def _manager_for(
        self, scope: Any, receive: Any, headers: dict[str, str]
    ) -> tuple[StreamableHTTPSessionManager, Any]:
        """The manager for this request, and the `receive` to hand it.

        A 2026-07-28 tools/call (it names its method in a header) from a client that takes
        SSE goes to the streaming manager: its answer is JSON when the call ends quickly and
        silently, an SSE stream once the upstream reports progress, and the client closing
        that stream cancels the call (and so the upstream's). A handshake-era POST (no such
        header) is read first: a tools/call asking for progress goes there too (its answer is
        then always SSE), with the body replayed. Everything else: JSON."""
        assert self.manager is not None and self.streaming is not None
        if (
            not settings.MCPCONTROL_GATEWAY_STREAMING
            or "text/event-stream" not in headers.get("accept", "")
            or scope.get("method") != "POST"
        ):
            return self.manager, receive
        method = headers.get("mcp-method")
        if method is not None:
            return (self.streaming if method == "tools/call" else self.manager), receive
        length = headers.get("content-length", "")
        if not length.isdigit() or int(length) > DEFAULT_MAX_REQUEST_BODY_SIZE:
            return self.manager, receive  # not read ahead: the SDK answers an oversized body
        body, replay = await _read_body(receive)
        if b'"progressToken"' in body and _is_call_with_progress(body):
            return self.streaming, replay
        return self.manager, replay

    # --- resources/* and prompts/* (gateway.services.aggregate) ---------------------------

    async def _reach(self, ref: ServerRef, work: Any) -> Any:
        """Run `work` with a client of the server, as this request's agent; Unreachable if not."""
        target = await self._target(ref.server_id)
        if isinstance(target, str):
            raise Unreachable(target)
        assert self.sessions is not None, "serves inside its lifespan"
        return await with_client(target, work, server_id=ref.server_id, sessions=self.sessions)

    async def _listing(self, kind: Kind) -> Listing:
        view = _view.get()
        return await self.aggregator.listing(
            kind, view_key=(view.agent.pk, view.state), servers=view.catalog.servers,
            filters=view.catalog.filters, reach=self._reach,
        )  # fmt: skip

    async def _upstream(self, ref: ServerRef, work: Any) -> Any:
        """`work` on the server; its failure an MCP error naming the server and the reason."""
        try:
            return await self._reach(ref, work)
        except Unreachable as exc:
            raise MCPError(UPSTREAM_ERROR, f"{ref.server_name}: {exc}") from exc
        except MCPError as exc:
            raise MCPError(exc.code, f"{ref.server_name}: {exc.message}", exc.data) from exc

    async def list_resources(
        self, ctx: Any, params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        listing = await self._listing("resources")
        items, following = page(listing.items, params.cursor if params else None,
                                name_of=lambda i: item_key("resources", i))  # fmt: skip
        return types.ListResourcesResult.model_validate({"resources": items,
                                                         "nextCursor": following})  # fmt: skip

    async def list_resource_templates(
        self, ctx: Any, params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        listing = await self._listing("templates")
        items, following = page(listing.items, params.cursor if params else None,
                                name_of=lambda i: item_key("templates", i))  # fmt: skip
        return types.ListResourceTemplatesResult.model_validate(
            {"resourceTemplates": items, "nextCursor": following}
        )

    async def read_resource(
        self, ctx: Any, params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        catalog = _view.get().catalog
        ref, uri = find_resource(str(params.uri), catalog.servers, catalog.filters)
        result = await self._upstream(ref, lambda client: client.read_resource(uri))
        return readdress_contents(result, ref.key)

    async def list_prompts(
        self, ctx: Any, params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        listing = await self._listing("prompts")
        items, following = page(listing.items, params.cursor if params else None,
                                name_of=lambda i: item_key("prompts", i))  # fmt: skip
        return types.ListPromptsResult.model_validate({"prompts": items, "nextCursor": following})

    async def get_prompt(
        self, ctx: Any, params: types.GetPromptRequestParams
    ) -> types.GetPromptResult:
        """By prefix; when two servers' prefixes fit (overlapping aliases), by the listing,
        which offers a name two servers share to neither."""
        catalog = _view.get().catalog
        found = find_prompt(params.name, catalog.servers, catalog.filters)
        if len(found) > 1:
            route = (await self._listing("prompts")).routes.get(params.name)
            found = [(r, n) for r, n in found if route is not None and route == (r.server_id, n)]
        if not found:
            raise MCPError(INVALID_PARAMS, f"{params.name}: no such prompt")
        ref, name = found[0]
        arguments = params.arguments
        return await self._upstream(ref, lambda client: client.get_prompt(name, arguments))  # type: ignore[no-any-return]

    async def lifespan(self, scope: Any, receive: Any, send: Any) -> None:
        """The ASGI lifespan: the session manager and the pool live as long as the worker."""
        await receive()  # lifespan.startup
        async with self.running():
            await send({"type": "lifespan.startup.complete"})
            await receive()  # lifespan.shutdown
        await send({"type": "lifespan.shutdown.complete"})


async def _read_body(receive: Any) -> tuple[bytes, Any]:
    """The request's body, and a `receive` that hands it out again (then waits as before)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # a disconnect: pass it on as it came
            chunks, first = [], message
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            first = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            break
    pending = [first]

    async def replay() -> Any:
        return pending.pop() if pending else await receive()

    return b"".join(chunks), replay


def _is_call_with_progress(body: bytes) -> bool:
    try:
        message = json.loads(body)
    except ValueError:
        return False
    return (
        isinstance(message, dict)
        and message.get("method") == "tools/call"
        and progress_token_from_params(message.get("params")) is not None
    )


async def _json(send: Any, status: int, body: dict[str, str], extra: Any = ()) -> None:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(payload)).encode()), *extra]  # fmt: skip
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
