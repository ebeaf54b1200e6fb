"""/mcp/agents/{agent_id}: one MCP endpoint (streamable HTTP) per agent, aggregating the
tools of every server the agent may use. Served by the ASGI application (mcpcontrol.asgi).

Built on the SDK's low-level Server and its StreamableHTTPSessionManager in stateless mode
with JSON responses: every POST is authenticated anew, so a revoked key stops at once, and
no session state ties a client to one worker process.
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
from django.core.exceptions import ObjectDoesNotExist
from django.utils import timezone
from mcp.server.lowlevel.server import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError

from gateway.api import fastpath
from gateway.services import KeyRejected, agent_key_authenticate
from gateway.services.catalog import call_target, credential_refused, reconnect_hint
from gateway.services.hotpath import FLUSH_SECONDS, HotPath, ToolCallBuffer, View
from gateway.services.sessions import SessionPool
from gateway.services.upstream import pooled_call, upstream_call
from mcpcontrol.api.permissions import READ_SERVERS
from mcpcontrol.lib.http import SharedPool
from servers.models import Agent

logger = logging.getLogger(__name__)

PATH = re.compile(r"/mcp/agents/(\d{1,18})/?")
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


def _error(reason: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=reason)],
                                is_error=True)  # fmt: skip


class Gateway:
    """The ASGI app behind /mcp/: the MCP server, its session manager and the upstream pool."""

    def __init__(self) -> None:
        self.server: Server[Any] = Server(
            "mcpcontrol-gateway", version="1.0",
            on_list_tools=self.list_tools, on_call_tool=self.call_tool,
            get_tool_input_schema=self.tool_input_schema,
        )  # fmt: skip
        self.manager: StreamableHTTPSessionManager | None = None
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
        self.pool = SharedPool(max_connections=POOL_CONNECTIONS)
        self.flush_now = anyio.Event()  # an event belongs to one loop: each lifespan its own
        try:
            async with self.manager.run(), anyio.create_task_group() as tg:
                self.sessions = SessionPool(tg=tg, http=self.pool)
                tg.start_soon(self._flusher)
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

    async def list_tools(
        self, ctx: Any, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        catalog = _view.get().catalog
        return types.ListToolsResult(tools=[types.Tool.model_validate(t) for t in catalog.tools])

    def tool_input_schema(self, name: Any) -> Any:
        """The schema the agent was advertised for `name`: the SDK checks Mcp-Param-* headers
        by it (without it, it would run tools/list for every call)."""
        tools = _view.get().catalog.tools
        return next((t["inputSchema"] for t in tools if t["name"] == name), None)

    async def call_tool(
        self, ctx: Any, params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        """1. Find the tool in the agent's catalog (policy applied); 2. resolve how to reach
        its upstream as this agent; 3. call it under the server's timeout; 4. record the call."""
        view, started = _view.get(), time.monotonic()
        agent, catalog = view.agent, view.catalog
        size = len(json.dumps(params.arguments or {}, default=str))
        route = catalog.routes.get(params.name)
        server_id, outcome = None, "unknown_tool"
        if route is None:
            hidden = catalog.hidden.get(params.name)
            outcome = "denied" if hidden and "policy" in hidden else outcome
            result = _error(f"{params.name}: {hidden or 'no such tool'}")
        else:
            server_id = route.server_id
            outcome, result = await self._routed(agent, route, params)
        self.calls.add(
            agent_id=agent.pk, server_id=server_id, tool=params.name, started=started,
            outcome=outcome, argument_bytes=size,
        )  # fmt: skip
        if self.calls.full:
            self.flush_now.set()
        return result

    async def _routed(
        self, agent: Agent, route: Any, params: types.CallToolRequestParams
    ) -> tuple[str, types.CallToolResult]:
        # Taken before the credential is read: a credential stored after it is never blamed
        # for this call's refusal (one refreshed by this very call is, by the next call's).
        presented_at = timezone.now()
        target = await self._target(route.server_id)
        if isinstance(target, str):
            outcome = "auth_required" if target.startswith("auth:") else "upstream_error"
            return outcome, _error(f"{route.server_name}: {target}")
        assert self.pool is not None and self.sessions is not None, "serves inside its lifespan"
        if target.transport == "stdio":  # a process per call (stdio pooling: docs/gateway.md)
            answer = await upstream_call(target, tool=route.tool, arguments=params.arguments,
                                         pool=self.pool)  # fmt: skip
        else:
            answer = await pooled_call(target, server_id=route.server_id, tool=route.tool,
                                       arguments=params.arguments, sessions=self.sessions)  # fmt: skip
        if answer.result is not None:
            return answer.outcome, answer.result
        reason = f"{route.server_name}: {answer.reason}"
        if answer.outcome == "auth_required":
            flagged = await sync_to_async(credential_refused)(
                agent=agent, server_id=route.server_id, reason=answer.reason,
                presented_at=presented_at,
            )  # fmt: skip
            marked = "; the credential is marked as needing re-authorization" if flagged else ""
            hint = reconnect_hint(server_id=route.server_id, agent_id=agent.pk)
            reason += f"{marked}; {hint}"
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
                authorization=headers.get("authorization", ""), agent_id=int(match[1])
            )
        except Refused as exc:
            extra = (
                [(b"www-authenticate", b'Bearer realm="mcpcontrol"')] if exc.status == 401 else []
            )
            await _json(send, exc.status, {"error": exc.error, "message": exc.message}, extra)
            return
        if self.manager is None:
            await _json(send, 503, {"error": "unavailable", "message": "the gateway runs only "
                                    "under an ASGI server with lifespan on"})  # fmt: skip
            return
        token = _view.set(view)
        try:
            receive = await fastpath.serve(self, scope, receive, send)  # tools/call, mostly
            if receive is not None:
                await self.manager.handle_request(scope, receive, send)
        finally:
            _view.reset(token)

    async def lifespan(self, scope: Any, receive: Any, send: Any) -> None:
        """The ASGI lifespan: the session manager and the pool live as long as the worker."""
        await receive()  # lifespan.startup
        async with self.running():
            await send({"type": "lifespan.startup.complete"})
            await receive()  # lifespan.shutdown
        await send({"type": "lifespan.shutdown.complete"})


async def _json(send: Any, status: int, body: dict[str, str], extra: Any = ()) -> None:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(payload)).encode()), *extra]  # fmt: skip
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
