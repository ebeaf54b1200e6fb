"""The health and tool discovery engine: claim servers, run MCP sessions, record what changed.

Every check is one real MCP session (see servers.mcp_client). The detailed outcome of the
latest check lives in the Django cache; the database is written only on meaningful events
(first or restored connection, an error, a status change, a new tool list), always with a
conditional UPDATE guarded by our claim so a stale row is never saved over a fresh one.
"""

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypedDict

import anyio
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F, Max, Q
from django.utils import timezone
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from audit.models import AuditEvent
from audit.services import AuditEntry, audit_events_create_many
from mcpcontrol.lib.urlguard import BlockedUrl, check_url
from servers.credentials import MissingCredential, credential_headers
from servers.mcp_client import Outcome, ProbeResult, SharedPool, Target, probe
from servers.mcp_client.probe import CLOSE_GRACE
from servers.models import McpServer

logger = logging.getLogger(__name__)

# Lease on check_claimed_at: longer than any batch can run (a chunk is at most CHUNK_ROUNDS
# rounds of one server's init_timeout + timeout), so only a dead worker's claim expires.
CLAIM_TTL = timedelta(minutes=15)
CHUNK_ROUNDS = 4
# A healthy server's last_connected_at is rewritten at most this often: without it every
# check would be a DB write; with it the column is never more than this stale.
CONNECTED_REFRESH = timedelta(minutes=10)
CACHE_TTL_SECONDS = 24 * 3600
ERROR_MESSAGE_MAX = 2000

Progress = Callable[[int, int], None]


@dataclass(kw_only=True)
class CheckResult:
    """What one check found, as reported to callers (admin, command, tasks)."""

    server_id: int
    name: str
    outcome: str
    message: str = ""
    response_time_ms: int | None = None
    tool_count: int | None = None
    tools_changed: bool = False
    status: str = ""
    db_writes: list[str] = field(default_factory=list)


# How many batches of the current beat sweep are still to run (enqueue once).
SWEEP_PENDING_KEY = "health:sweep:pending-batches"


def health_cache_key(server_id: int) -> str:
    """The cache key of a server's latest health state (runtime only, never in the DB)."""
    return f"health:server:{server_id}"


def server_health_state(*, server: McpServer) -> dict[str, Any]:
    """The latest check's outcome for display: from the cache, else what the row knows."""
    state: dict[str, Any] | None = cache.get(health_cache_key(server.id))
    if state is not None:
        return state
    return {
        "outcome": "unknown",
        "message": server.error_message,
        "checked_at": None,
        "response_time_ms": server.response_time_ms,
        "tool_count": server.num_tools,
        "connected": False,
    }


def _refusal(outcome: Outcome, message: str) -> ProbeResult:
    return ProbeResult(outcome=outcome, message=message, response_time_ms=0)


def _remote_headers(server: McpServer) -> dict[str, str]:
    # per_agent servers are probed with the credential of the agent chosen on the server.
    agent = (
        server.probe_agent if server.credential_mode == McpServer.CredentialMode.PER_AGENT else None
    )
    return credential_headers(server=server, agent=agent)


class _Timeouts(TypedDict):
    timeout: float
    init_timeout: float


def _target_for(server: McpServer, *, legacy: bool) -> Target | ProbeResult:
    """How to reach the server, or the outcome when we must not even try."""
    if not server.is_enabled:
        return _refusal(Outcome.DISABLED, "server is disabled")
    timeouts: _Timeouts = {
        "timeout": server.timeout_ms / 1000,
        "init_timeout": server.init_timeout_ms / 1000,
    }
    if server.transport_type == McpServer.Transport.STDIO:
        if not settings.MCPCONTROL_ALLOW_STDIO:
            return _refusal(
                Outcome.DISABLED,
                "stdio servers are not run here (MCPCONTROL_ALLOW_STDIO is off): "
                "the command was not started",
            )
        return Target(
            transport=server.transport_type, command=server.command, args=list(server.args),
            env=dict(server.env), cwd=server.cwd, legacy=legacy,
            capture_stderr=server.stderr == McpServer.Stderr.CAPTURE, **timeouts,
        )  # fmt: skip
    try:
        check_url(server.url)  # before any byte is sent: SSRF guard, resolving the host
        headers = _remote_headers(server)
    except BlockedUrl as exc:
        return _refusal(Outcome.UNREACHABLE, f"URL refused: {exc}")
    except MissingCredential as exc:
        return _refusal(Outcome.AUTH_REQUIRED, str(exc))
    return Target(
        transport=server.transport_type, url=server.url, headers=headers, legacy=legacy, **timeouts
    )


def _spoke_legacy(state: dict[str, Any]) -> bool:
    """Skip the server/discover probe for a server that answered the old handshake last time."""
    return state.get("outcome") == Outcome.HEALTHY and (
        state.get("protocol_version") in HANDSHAKE_PROTOCOL_VERSIONS
    )


async def _probe_all(
    targets: dict[int, Target], *, concurrency: int, progress: Progress | None
) -> dict[int, ProbeResult]:
    """Run the probes on one event loop, `concurrency` at a time, over one connection pool."""
    results: dict[int, ProbeResult] = {}
    limiter = anyio.Semaphore(concurrency)
    pool = SharedPool(max_connections=concurrency * 2)  # SSE holds a GET beside its POSTs

    async def one(server_id: int, target: Target) -> None:
        async with limiter:
            results[server_id] = await probe(target, pool=pool)
        if progress is not None:
            progress(len(results), len(targets))

    try:
        async with anyio.create_task_group() as tg:
            for server_id, target in targets.items():
                tg.start_soon(one, server_id, target)
    finally:
        await pool.close_pool()
    return results


def _claim(server_ids: list[int], *, now: datetime) -> list[McpServer]:
    """Claim what nobody else is checking; the claim timestamp doubles as our claim token."""
    claimable = Q(check_claimed_at=None) | Q(check_claimed_at__lt=now - CLAIM_TTL)
    # Conditional UPDATE = the claim: two workers can't both move the same row off "free".
    McpServer.objects.filter(claimable, id__in=server_ids).update(check_claimed_at=now)
    claimed = McpServer.objects.filter(id__in=server_ids, check_claimed_at=now)
    return list(claimed.select_related("probe_agent"))


def _release(servers: list[McpServer], *, claimed_at: datetime) -> None:
    ids = [s.id for s in servers]
    McpServer.objects.filter(id__in=ids, check_claimed_at=claimed_at).update(check_claimed_at=None)


def tools_diff(*, old: list[dict[str, Any]], new: list[dict[str, Any]]) -> dict[str, Any]:
    """{added, removed, changed} between two tool lists; empty when nothing changed.

    A tool is "changed" when its input schema or description differs.
    """
    before = {t["name"]: t for t in old or []}
    after = {t["name"]: t for t in new or []}
    changed = {
        name: {"old": before[name], "new": after[name]}
        for name in sorted(before.keys() & after.keys())
        if before[name].get("inputSchema") != after[name].get("inputSchema")
        or before[name].get("description") != after[name].get("description")
    }
    diff = {
        "added": sorted(after.keys() - before.keys()),
        "removed": sorted(before.keys() - after.keys()),
        "changed": changed,
    }
    return diff if any(diff.values()) else {}


@dataclass(kw_only=True)
class _Write:
    """What one check wants stored: the row's new columns and the audit entries for them."""

    check: CheckResult
    updates: dict[str, Any] = field(default_factory=dict)
    entries: list[AuditEntry] = field(default_factory=list)


def _status_entry(server: McpServer, new_status: str) -> AuditEntry:
    return AuditEntry(
        action=AuditEvent.Action.STATUS_CHANGED,
        target=server,
        changes={"status": {"old": server.status, "new": new_status}},
    )


def _success_updates(server: McpServer, result: ProbeResult, now: datetime) -> dict[str, Any]:
    """Columns a healthy check must write; empty for a steady healthy server."""
    updates: dict[str, Any] = {}
    if result.capabilities != server.capabilities:
        updates["capabilities"] = result.capabilities
    if result.protocol_version != server.protocol_version:
        updates["protocol_version"] = result.protocol_version
    stale = server.last_connected_at is None or now - server.last_connected_at > CONNECTED_REFRESH
    recovered = server.status != McpServer.Status.ACTIVE or server.consecutive_failures > 0
    if stale or recovered or server.error_message:
        updates.update(
            status=McpServer.Status.ACTIVE, consecutive_failures=0, error_message="",
            last_connected_at=now, last_checked_at=now, tools_last_synced_at=now,
            response_time_ms=result.response_time_ms, init_duration_ms=result.init_duration_ms,
        )  # fmt: skip
    return updates


def _plan_success(server: McpServer, result: ProbeResult, now: datetime) -> _Write:
    tools = result.tools or []
    diff = tools_diff(old=server.tools, new=tools)
    write = _Write(
        check=_check_result(server, result, tools_changed=bool(diff)),
        updates=_success_updates(server, result, now),
    )
    if diff:
        write.updates.update(tools=tools, tools_last_synced_at=now, last_checked_at=now)
        write.entries.append(
            AuditEntry(action=AuditEvent.Action.TOOLS_CHANGED, target=server, changes=diff)
        )
    write.check.status = write.updates.get("status", server.status)
    if write.check.status != server.status:
        write.entries.append(_status_entry(server, write.check.status))
    return write


def _plan_failure(server: McpServer, result: ProbeResult, now: datetime) -> _Write:
    failures = server.consecutive_failures + 1
    threshold = settings.MCPCONTROL_HEALTH_FAILURE_THRESHOLD
    write = _Write(check=_check_result(server, result, tools_changed=False))
    write.updates = {
        "consecutive_failures": failures,
        "last_error_at": now,
        "last_checked_at": now,
        "error_message": f"{result.outcome}: {result.message}"[:ERROR_MESSAGE_MAX],
    }
    if failures >= threshold and server.status != McpServer.Status.ERROR:
        write.updates["status"] = McpServer.Status.ERROR
        write.entries.append(_status_entry(server, McpServer.Status.ERROR))
    write.check.status = write.updates.get("status", server.status)
    return write


def _check_result(server: McpServer, result: ProbeResult, *, tools_changed: bool) -> CheckResult:
    return CheckResult(
        server_id=server.id,
        name=server.name,
        outcome=str(result.outcome),
        message=result.message,
        response_time_ms=result.response_time_ms,
        tool_count=len(result.tools) if result.tools is not None else None,
        tools_changed=tools_changed,
        status=server.status,
    )


def _cache_state(result: ProbeResult, previous: dict[str, Any], now: datetime) -> dict[str, Any]:
    healthy = result.outcome == Outcome.HEALTHY
    return {
        "outcome": str(result.outcome),
        "message": result.message,
        "checked_at": now.isoformat(),
        "connected": healthy,
        "last_connected_at": now.isoformat() if healthy else previous.get("last_connected_at"),
        "response_time_ms": result.response_time_ms,
        "init_duration_ms": result.init_duration_ms,
        "protocol_version": result.protocol_version,
        "tool_count": len(result.tools) if result.tools is not None else None,
        "stderr": result.stderr,
    }


def _plan(server: McpServer, result: ProbeResult, now: datetime) -> _Write:
    if result.outcome == Outcome.HEALTHY:
        return _plan_success(server, result, now)
    if result.outcome == Outcome.DISABLED:  # not the server's fault: nothing to record
        return _Write(check=_check_result(server, result, tools_changed=False))
    return _plan_failure(server, result, now)


def _save(writes: list[_Write], *, claimed_at: datetime) -> None:
    """Store a chunk's changes in one transaction: a conditional UPDATE per changed server,
    then one INSERT of the audit events of the updates that applied. A cold sweep thus
    commits once per chunk instead of once per server, and each audit row still commits
    with the change it describes."""
    pending = sorted((w for w in writes if w.updates), key=lambda w: w.check.server_id)
    if not pending:
        return  # a steady chunk opens no transaction at all
    entries: list[AuditEntry] = []
    with transaction.atomic():
        for write in pending:  # in id order, so writers of the same rows can't deadlock
            # Guarded by our claim: if the lease expired and another worker took over, we
            # lose quietly, and so do the audit events of this write.
            guarded = McpServer.objects.filter(
                id=write.check.server_id, check_claimed_at=claimed_at
            )
            if guarded.update(**write.updates) == 1:
                write.check.db_writes = sorted(write.updates)
                entries += write.entries
        if entries:
            audit_events_create_many(entries=entries)


def _check_claimed(
    servers: list[McpServer], *, claimed_at: datetime, concurrency: int, progress: Progress | None
) -> list[CheckResult]:
    """Steps: 1. read the previous states in one cache round trip; 2. build targets (or
    immediate refusals); 3. probe concurrently; 4. store what changed, in one transaction;
    5. cache the states."""
    previous = cache.get_many([health_cache_key(s.id) for s in servers])
    prepared = {
        s.id: _target_for(s, legacy=_spoke_legacy(previous.get(health_cache_key(s.id)) or {}))
        for s in servers
    }
    targets = {sid: t for sid, t in prepared.items() if isinstance(t, Target)}
    probed = anyio.run(lambda: _probe_all(targets, concurrency=concurrency, progress=progress))
    now = timezone.now()
    writes, states = [], {}
    for server in servers:
        outcome = probed.get(server.id) or prepared[server.id]
        assert isinstance(outcome, ProbeResult)
        writes.append(_plan(server, outcome, now))
        key = health_cache_key(server.id)
        states[key] = _cache_state(outcome, previous.get(key) or {}, now)
    _save(writes, claimed_at=claimed_at)
    cache.set_many(states, timeout=CACHE_TTL_SECONDS)
    return [write.check for write in writes]


def servers_check(
    *, server_ids: list[int], concurrency: int, progress: Progress | None = None
) -> list[CheckResult]:
    """Check the given servers, `concurrency` sessions at a time, in claimed chunks.

    Servers another worker is checking right now are skipped quietly (not in the result).
    """
    checks: list[CheckResult] = []
    chunk = max(concurrency * CHUNK_ROUNDS, 1)
    for start in range(0, len(server_ids), chunk):
        claimed_at = timezone.now()
        servers = _claim(server_ids[start : start + chunk], now=claimed_at)
        if not servers:
            continue
        try:
            checks += _check_claimed(
                servers, claimed_at=claimed_at, concurrency=concurrency, progress=progress
            )
        finally:
            _release(servers, claimed_at=claimed_at)  # also on a crash: never wedge a server
    return checks


def server_check(*, server_id: int) -> CheckResult | None:
    """Check one server now. None when another check of it is running (claim lost)."""
    checks = servers_check(server_ids=[server_id], concurrency=1)
    return checks[0] if checks else None


def servers_check_batch(
    *,
    server_ids: list[int],
    concurrency: int,
    progress: Progress | None = None,
    sweep: bool = False,
) -> dict[str, Any]:
    """Check the given servers; return a summary (counts by outcome, time taken).

    sweep=True marks a batch of a beat sweep: when it ends, however it ends, it counts
    itself off the sweep's pending batches (see servers_sweep_enqueue).
    """
    started = time.monotonic()
    try:
        checks = servers_check(server_ids=server_ids, concurrency=concurrency, progress=progress)
    finally:
        if sweep:
            _sweep_batch_done()
    summary = {
        "servers": len(server_ids),
        "checked": len(checks),
        "skipped": len(server_ids) - len(checks),
        "outcomes": dict(Counter(c.outcome for c in checks)),
        "tools_changed": sum(c.tools_changed for c in checks),
        "seconds": round(time.monotonic() - started, 3),
    }
    logger.info("health sweep: %s", summary)
    return summary


def servers_check_all(*, concurrency: int, progress: Progress | None = None) -> dict[str, Any]:
    """Check every enabled server in this process; return a summary (see servers_check_batch)."""
    ids = list(McpServer.objects.enabled().order_by("id").values_list("id", flat=True))
    return servers_check_batch(server_ids=ids, concurrency=concurrency, progress=progress)


def sweep_batch_size(*, concurrency: int, time_limit: float) -> int:
    """How many servers one batch may hold so that it ends within `time_limit` seconds even
    if every server in it hangs to the end of its timeouts.

    Such a batch runs in rounds of `concurrency` sessions, each as long as the slowest
    server's handshake + listing timeouts + close grace; at most one claimed chunk per batch.
    """
    worst_ms = McpServer.objects.enabled().aggregate(
        worst=Max(F("init_timeout_ms") + F("timeout_ms"))
    )["worst"]
    worst = (worst_ms or 0) / 1000 + CLOSE_GRACE
    if worst > time_limit:
        # Even one round may overrun: the soft time limit then releases the claims.
        logger.warning("a server's timeouts (%.0f s) exceed a batch's %.0f s", worst, time_limit)
    return concurrency * max(1, min(CHUNK_ROUNDS, int(time_limit // worst)))


def _sweep_batch_done() -> None:
    try:
        if cache.decr(SWEEP_PENDING_KEY) <= 0:
            cache.delete(SWEEP_PENDING_KEY)
    except ValueError:
        pass  # the marker expired meanwhile: nothing left to count off


def servers_sweep_enqueue(
    *, concurrency: int, time_limit: float, queue: str | None = None
) -> dict[str, Any]:
    """Fan a sweep of every enabled server out into refresh_batch tasks on `queue`, each small
    enough (sweep_batch_size) to end within `time_limit` even if all of its servers hang.

    Enqueue once: while the previous sweep still has batches pending, a new sweep is
    skipped, so slow sweeps cannot pile batches up behind each other in the queue. The
    marker expires on its own should a batch be lost with its worker.
    """
    from servers.tasks import refresh_batch as refresh_batch_task  # the tasks import us

    ids = list(McpServer.objects.enabled().order_by("id").values_list("id", flat=True))
    size = sweep_batch_size(concurrency=concurrency, time_limit=time_limit)
    batches = [ids[start : start + size] for start in range(0, len(ids), size)]
    expires = max(settings.MCPCONTROL_HEALTH_INTERVAL_SECONDS, time_limit * len(batches))
    if batches and not cache.add(SWEEP_PENDING_KEY, len(batches), timeout=int(expires) + 1):
        logger.info("health sweep skipped: the previous sweep still has batches pending")
        return {"servers": len(ids), "batches": 0, "batch_size": size, "skipped": "pending"}
    for batch in batches:
        # Not on_commit: we only read, there is nothing a batch must wait for.
        # celery-types wants a queue, but Celery routes None like no queue (app/routes.py).
        refresh_batch_task.apply_async((batch,), {"sweep": True}, queue=queue)  # type: ignore[arg-type]
    summary = {"servers": len(ids), "batches": len(batches), "batch_size": size}
    logger.info("health sweep enqueued: %s", summary)
    return summary
