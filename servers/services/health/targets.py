"""Before the sessions: who may not be tried, credentials resolved, one session each."""

import logging
from typing import Any, TypedDict

import anyio
from django.conf import settings
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from mcpcontrol.lib.urlguard import BlockedUrl, check_url
from servers.credential_port import Need, Resolved, credentials
from servers.mcp_client import Outcome, ProbeResult, SharedPool, Target, probe
from servers.mcp_client.probe import CLOSE_GRACE
from servers.models import MAX_TIMEOUT_MS, McpServer
from servers.services.health.state import REFRESH_BUDGET_SECONDS, Tally, health_cache_key

logger = logging.getLogger(__name__)


def _refusal(outcome: Outcome, message: str) -> ProbeResult:
    return ProbeResult(outcome=outcome, message=message, response_time_ms=0)


class _Timeouts(TypedDict):
    timeout: float
    init_timeout: float


def _timeouts(server: McpServer) -> _Timeouts:
    # Bounded even for rows written before the bound was validated.
    return {
        "timeout": min(server.timeout_ms, MAX_TIMEOUT_MS) / 1000,
        "init_timeout": min(server.init_timeout_ms, MAX_TIMEOUT_MS) / 1000,
    }


def worst_seconds(servers: "list[McpServer] | Any") -> float:
    """The longest one check of these servers may take, each timeout clamped to its bound."""
    worst = max(
        (
            min(s.init_timeout_ms, MAX_TIMEOUT_MS) + min(s.timeout_ms, MAX_TIMEOUT_MS)
            for s in servers
        ),
        default=0,
    )
    return worst / 1000 + CLOSE_GRACE + REFRESH_BUDGET_SECONDS


def _refused(server: McpServer) -> ProbeResult | None:
    """The outcome of a server we must not even try, or None."""
    if not server.is_enabled:
        return _refusal(Outcome.DISABLED, "server is disabled")
    if server.transport_type == McpServer.Transport.STDIO and not settings.MCPCONTROL_ALLOW_STDIO:
        return _refusal(
            Outcome.DISABLED,
            "stdio servers are not run here (MCPCONTROL_ALLOW_STDIO is off): "
            "the command was not started",
        )
    return None


def _need(server: McpServer) -> Need:
    # Checked as the agent chosen on the server: its credential (per_agent mode) and its
    # variable values (falling back to its owner's); without one, the shared credential
    # and the server owner's values.
    return (server, server.probe_agent)


def _target_for(server: McpServer, resolved: Resolved, *, legacy: bool) -> Target | ProbeResult:
    """How to reach the server with its resolved credentials, or why we cannot."""
    if resolved.missing:
        return _refusal(Outcome.AUTH_REQUIRED, resolved.missing)
    if server.transport_type == McpServer.Transport.STDIO:
        return Target(
            transport=server.transport_type, command=server.command, args=resolved.args,
            env=resolved.env, cwd=server.cwd, legacy=legacy,
            capture_stderr=server.stderr == McpServer.Stderr.CAPTURE, **_timeouts(server),
        )  # fmt: skip
    try:
        check_url(resolved.url)  # before any byte is sent: SSRF guard, resolving the host
    except BlockedUrl as exc:
        return _refusal(Outcome.UNREACHABLE, f"URL refused: {exc}")
    return Target(
        transport=server.transport_type, url=resolved.url, headers=resolved.headers,
        legacy=legacy, **_timeouts(server),
    )  # fmt: skip


def prepare(servers: list[McpServer], previous: dict[str, Any]) -> dict[int, Target | ProbeResult]:
    """Targets for the servers we may check, refusals for the others. The credential
    pre-step first renews the due OAuth grants of the whole chunk, concurrently."""
    prepared: dict[int, Target | ProbeResult] = {}
    needs = []
    for server in servers:
        refusal = _refused(server)
        if refusal is not None:
            prepared[server.id] = refusal
        else:
            needs.append(_need(server))
    credentials().refresh_due(needs=needs, budget=REFRESH_BUDGET_SECONDS)
    resolved = credentials().resolve(needs=needs)
    for server, _agent in needs:
        state = previous.get(health_cache_key(server.id)) or {}
        prepared[server.id] = _target_for(server, resolved[server.id], legacy=_spoke_legacy(state))
    return prepared


def _spoke_legacy(state: dict[str, Any]) -> bool:
    """Skip the server/discover probe for a server that answered the old handshake last time."""
    return state.get("outcome") == Outcome.HEALTHY and (
        state.get("protocol_version") in HANDSHAKE_PROTOCOL_VERSIONS
    )


async def probe_all(
    targets: dict[int, Target], *, concurrency: int, tally: Tally
) -> dict[int, ProbeResult]:
    """Run the probes on one event loop, `concurrency` at a time, over one connection pool."""
    results: dict[int, ProbeResult] = {}
    limiter = anyio.Semaphore(concurrency)
    pool = SharedPool(max_connections=concurrency * 2)  # SSE holds a GET beside its POSTs

    async def one(server_id: int, target: Target) -> None:
        async with limiter:
            results[server_id] = await probe(target, pool=pool)
        tally.add()

    try:
        async with anyio.create_task_group() as tg:
            for server_id, target in targets.items():
                tg.start_soon(one, server_id, target)
    finally:
        await pool.close_pool()
    return results
