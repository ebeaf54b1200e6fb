"""/mcp/servers{path}: one upstream server behind the gateway, its tools not renamed (seed
004's `path`: a server at `/weather` is served at /mcp/servers/weather).

The server is the one the caller reaches at that path (servers.services.server_path_resolve:
the most specific of the enabled servers they may use). Callers:

- an agent key (mcpa_...) acts as its agent, exactly as on /mcp/agents/{id}: the hot path's
  cached view of the agent, narrowed to the one server, is answered by the aggregating
  endpoint's own MCP server (gateway.api.mcp.Gateway.serve), so calls take its pooled
  upstream sessions, credential resolution, policy and ToolCall rows;
- a JWT of our API with read:servers acts as its user, without an agent: only the server's
  shared credential is presented (gateway.services.server_route.user_call_target). Such
  calls are logged, not written as ToolCall rows (a ToolCall names an agent).
"""

import contextvars
import logging
import time
from dataclasses import dataclass
from typing import Any

import anyio
import mcp_types as types
from asgiref.sync import sync_to_async
from django.utils import timezone
from mcp.server.lowlevel.server import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from gateway.api.mcp import Gateway, Refused, _error, _json, _jwt_user
from gateway.models import key_digest
from gateway.services import KeyRejected, agent_key_authenticate
from gateway.services.catalog import Catalog, auth_refusal_reason
from gateway.services.hotpath import View
from gateway.services.server_route import server_catalog, user_call_target
from gateway.services.sessions import SessionPool
from gateway.services.upstream import pooled_call
from servers.services import server_path_resolve

logger = logging.getLogger(__name__)

PREFIX = "/mcp/servers"
MAX_CACHED = 10_000  # key → agent ids and narrowed views kept per worker
MAX_PATH = 201  # McpServer.path's 200 characters, and a trailing slash


@dataclass(frozen=True, kw_only=True)
class UserRoute:
    """A bare user's request: who, and the tools of the server their path reached."""

    user: Any
    catalog: Catalog


_user_route: contextvars.ContextVar[UserRoute] = contextvars.ContextVar("server_route_user")


def _not_found() -> Refused:
    return Refused(404, "not_found", "no server you may use is at this path")


class ServerRoute:
    """The ASGI app behind /mcp/servers/: authenticates, picks the server, then answers."""

    def __init__(self, *, gateway: Gateway) -> None:
        self.gateway = gateway
        # A key's agent never changes, so its digest may name it for the worker's life; the
        # key itself is re-checked by the hot path on every request.
        self.key_agents: dict[str, int] = {}
        # (agent, path) → (the agent's view it was narrowed from, the narrowed view): reused
        # while the hot path hands back that same view (its fingerprint and TTL held).
        self.narrowed: dict[tuple[int, str], tuple[View, View]] = {}
        self.server: Server[Any] = Server(
            "mcpcontrol-gateway", version="1.0",
            on_list_tools=self.list_tools, on_call_tool=self.call_tool,
        )  # fmt: skip
        self._running: tuple[SessionPool, StreamableHTTPSessionManager, anyio.Event] | None = None

    def _agent_id(self, raw: str) -> int:
        digest = key_digest(raw)
        if digest not in self.key_agents:
            try:
                key = agent_key_authenticate(raw=raw)
            except KeyRejected as exc:
                raise Refused(401, "unauthorized", "unknown, revoked or expired key") from exc
            if len(self.key_agents) >= MAX_CACHED:
                self.key_agents.clear()
            self.key_agents[digest] = key.agent_id
        return self.key_agents[digest]

    def _agent_view(self, authorization: str, raw: str, path: str) -> View:
        view = self.gateway.hot.admit(authorization=authorization, agent_id=self._agent_id(raw))
        held = self.narrowed.get((view.agent.pk, path))
        if held is not None and held[0] is view:
            return held[1]
        winner = server_path_resolve(user=view.agent.owner, path=path).winner
        if winner is None:
            raise _not_found()
        catalog = server_catalog(agent=view.agent, server=winner)
        # The targets dict is the agent's view's own: resolved once for both routes, and
        # dropped with it when the fingerprint changes.
        narrowed = View(agent=view.agent, state=view.state, until=view.until, catalog=catalog,
                        targets=view.targets)  # fmt: skip
        if len(self.narrowed) >= MAX_CACHED:
            self.narrowed.clear()
        self.narrowed[(view.agent.pk, path)] = (view, narrowed)
        return narrowed

    def admit(self, *, authorization: str, path: str) -> View | UserRoute:
        """The agent view or the bare user's route this request is answered as, or Refused:
        401 for a missing or unusable bearer, 403 for a JWT without read:servers, 404 when
        no server the caller may use is at `path` (whether another user's is, is not said)."""
        scheme, _, raw = authorization.partition(" ")
        raw = raw.strip()
        if scheme.lower() != "bearer" or not raw:
            raise Refused(401, "unauthorized", "send Authorization: Bearer <agent key or token>")
        if raw.startswith("mcpa_"):
            return self._agent_view(authorization, raw, path)
        user = _jwt_user(raw)
        winner = server_path_resolve(user=user, path=path).winner
        if winner is None:
            raise _not_found()
        return UserRoute(user=user, catalog=server_catalog(agent=None, server=winner))

    async def list_tools(
        self, ctx: Any, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        tools = _user_route.get().catalog.tools
        return types.ListToolsResult(tools=[types.Tool.model_validate(t) for t in tools])

    async def call_tool(
        self, ctx: Any, params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        """A bare user's call: the shared credential, the pooled upstream session; an
        upstream 401/403 flags that credential as the aggregating endpoint does."""
        route, started = _user_route.get(), time.monotonic()
        found = route.catalog.routes.get(params.name)
        if found is None:
            return _error(f"{params.name}: no such tool")
        presented_at = timezone.now()
        target = await sync_to_async(user_call_target)(user=route.user, server_id=found.server_id)
        if isinstance(target, str):
            outcome, result = "unavailable", _error(f"{found.server_name}: {target}")
        else:
            assert self.gateway.sessions is not None, "serves inside the gateway's lifespan"
            answer = await pooled_call(
                target, server_id=found.server_id, tool=found.tool, arguments=params.arguments,
                sessions=self.gateway.sessions,
            )  # fmt: skip
            outcome = answer.outcome
            result = answer.result or _error(await self._reason(found, answer, presented_at))
        logger.info("server route call: user=%s server=%s tool=%s outcome=%s ms=%d",
                    route.user.pk, found.server_id, found.tool, outcome,
                    (time.monotonic() - started) * 1000)  # fmt: skip
        return result

    @staticmethod
    async def _reason(found: Any, answer: Any, presented_at: Any) -> str:
        if answer.outcome != "auth_required":
            return f"{found.server_name}: {answer.reason}"
        return str(
            await sync_to_async(auth_refusal_reason)(
                agent=None,
                server_id=found.server_id,
                server_name=found.server_name,
                reason=answer.reason,
                presented_at=presented_at,
            )
        )

    async def _manager(self) -> StreamableHTTPSessionManager | None:
        """The bare users' session manager, run in the gateway's task group: started at the
        first request of each lifespan, ended with it (no lifespan of its own to wire)."""
        sessions = self.gateway.sessions
        if sessions is None:
            return None
        if self._running is None or self._running[0] is not sessions:
            manager = StreamableHTTPSessionManager(app=self.server, stateless=True,
                                                   json_response=True)  # fmt: skip
            self._running = (sessions, manager, anyio.Event())
            sessions.tg.start_soon(self._run, manager, self._running[2])
        await self._running[2].wait()
        return self._running[1]

    @staticmethod
    async def _run(manager: StreamableHTTPSessionManager, ready: anyio.Event) -> None:
        async with manager.run():
            ready.set()
            await anyio.sleep_forever()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "")[len(PREFIX) :]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            if not path.startswith("/") or len(path) > MAX_PATH:
                raise _not_found()
            found = await sync_to_async(self.admit)(
                authorization=headers.get("authorization", ""), path=path
            )
        except Refused as exc:
            extra = (
                [(b"www-authenticate", b'Bearer realm="mcpcontrol"')] if exc.status == 401 else []
            )
            await _json(send, exc.status, {"error": exc.error, "message": exc.message}, extra)
            return
        if isinstance(found, View):
            await self.gateway.serve(found, scope, receive, send)
            return
        manager = await self._manager()
        if manager is None:
            await _json(send, 503, {"error": "unavailable", "message": "the gateway runs only "
                                    "under an ASGI server with lifespan on"})  # fmt: skip
            return
        token = _user_route.set(found)
        try:
            await manager.handle_request(scope, receive, send)
        finally:
            _user_route.reset(token)
