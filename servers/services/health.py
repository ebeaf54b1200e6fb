"""The health and tool discovery engine: claim servers, run MCP sessions, record what changed.

Every check is one real MCP session (see servers.mcp_client). The detailed outcome of the
latest check lives in the Django cache; the database is written only on meaningful events
(first or restored connection, an error, a status change, a new tool list), always with a
conditional UPDATE guarded by our claim so a stale row is never saved over a fresh one.
"""

import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypedDict

import anyio
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from audit.models import AuditEvent
from audit.services import AuditEntry, audit_events_create_many
from mcpcontrol.lib.metrics import record_health_check, record_sweep_finished
from mcpcontrol.lib.urlguard import BlockedUrl, check_url
from servers.credential_port import Need, Resolved, credentials
from servers.mcp_client import Outcome, ProbeResult, SharedPool, Target, probe
from servers.mcp_client.probe import CLOSE_GRACE
from servers.models import MAX_TIMEOUT_MS, McpServer

logger = logging.getLogger(__name__)

# A claimed chunk is one round of `concurrency` sessions, so it ends within its slowest
# server's handshake + listing timeouts (+ the close grace and the credential pre-step).
# Its lease is twice that: a live worker always finishes inside it, and the servers of a
# worker killed mid-sweep are free again after at most 2 x their check timeout.
LEASE_FACTOR = 2
# The credential pre-step of a chunk waits this long at most for OAuth refreshes.
REFRESH_BUDGET_SECONDS = 10.0
# Chunks per sweep batch at most: short tasks spread a sweep over every worker.
BATCH_ROUNDS = 4
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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


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


class _Timeouts(TypedDict):
    timeout: float
    init_timeout: float


def _timeouts(server: McpServer) -> _Timeouts:
    # Bounded even for rows written before the bound was validated.
    return {
        "timeout": min(server.timeout_ms, MAX_TIMEOUT_MS) / 1000,
        "init_timeout": min(server.init_timeout_ms, MAX_TIMEOUT_MS) / 1000,
    }


def _worst_seconds(servers: "list[McpServer] | Any") -> float:
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


def _prepare(servers: list[McpServer], previous: dict[str, Any]) -> dict[int, Target | ProbeResult]:
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


def _claim(server_ids: list[int], *, now: datetime) -> tuple[str, list[McpServer]]:
    """Claim what nobody else is checking; return our claim token and the servers won."""
    free = Q(check_claimed_until=None) | Q(check_claimed_until__lt=now)
    candidates = McpServer.objects.filter(free, id__in=server_ids)
    lease = LEASE_FACTOR * _worst_seconds(candidates.only("timeout_ms", "init_timeout_ms"))
    claim = uuid.uuid4().hex
    # Conditional UPDATE = the claim: two workers can't both move the same row off "free".
    McpServer.objects.filter(free, id__in=server_ids).update(
        check_claim=claim, check_claimed_until=now + timedelta(seconds=lease)
    )
    claimed = McpServer.objects.filter(check_claim=claim)
    return claim, list(claimed.select_related("probe_agent"))


def _release(claim: str) -> None:
    McpServer.objects.filter(check_claim=claim).update(check_claim="", check_claimed_until=None)


def servers_release_claims(*, server_ids: list[int]) -> int:
    """Free servers whose checking worker died (Celery reported it lost): no need to wait
    for their lease. A live claim of another worker on the same ids may be freed too; the
    worst that does is one extra check of those servers."""
    return (
        McpServer.objects.filter(id__in=server_ids)
        .exclude(check_claim="")
        .update(check_claim="", check_claimed_until=None)
    )


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
    if diff or server.num_tools != len(tools):  # a declared count yields to the real one
        write.updates["num_tools"] = len(tools)
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


def _save(writes: list[_Write], *, claim: str) -> None:
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
            guarded = McpServer.objects.filter(id=write.check.server_id, check_claim=claim)
            if guarded.update(**write.updates) == 1:
                write.check.db_writes = sorted(write.updates)
                entries += write.entries
        if entries:
            audit_events_create_many(entries=entries)


def _check_claimed(
    servers: list[McpServer], *, claim: str, concurrency: int, progress: Progress | None
) -> list[CheckResult]:
    """Steps: 1. read the previous states in one cache round trip; 2. build targets (or
    immediate refusals), credentials renewed and resolved for the whole chunk; 3. probe
    concurrently; 4. store what changed, in one transaction; 5. cache the states."""
    previous = cache.get_many([health_cache_key(s.id) for s in servers])
    prepared = _prepare(servers, previous)
    targets = {sid: t for sid, t in prepared.items() if isinstance(t, Target)}
    probed = anyio.run(lambda: _probe_all(targets, concurrency=concurrency, progress=progress))
    now = timezone.now()
    writes, states = [], {}
    for server in servers:
        outcome = probed.get(server.id) or prepared[server.id]
        assert isinstance(outcome, ProbeResult)
        record_health_check(transport=server.transport_type, outcome=str(outcome.outcome),
                            seconds=(outcome.response_time_ms or 0) / 1000)  # fmt: skip
        writes.append(_plan(server, outcome, now))
        key = health_cache_key(server.id)
        states[key] = _cache_state(outcome, previous.get(key) or {}, now)
    _save(writes, claim=claim)
    cache.set_many(states, timeout=CACHE_TTL_SECONDS)
    return [write.check for write in writes]


def servers_check(
    *, server_ids: list[int], concurrency: int, progress: Progress | None = None
) -> list[CheckResult]:
    """Check the given servers, `concurrency` sessions at a time, one claimed chunk (one
    round of sessions) after another.

    Servers another worker is checking right now are skipped quietly (not in the result).
    """
    checks: list[CheckResult] = []
    chunk = max(concurrency, 1)
    for start in range(0, len(server_ids), chunk):
        claim, servers = _claim(server_ids[start : start + chunk], now=timezone.now())
        if not servers:
            continue
        try:
            checks += _check_claimed(
                servers, claim=claim, concurrency=concurrency, progress=progress
            )
        finally:
            _release(claim)  # also on a crash: never wedge a server
    return checks


def check_report_key(report_as: str) -> str:
    """The cache key under which a check run for someone waiting (the API) leaves its result."""
    return f"health:check-report:{report_as}"


def server_check(*, server_id: int, report_as: str = "") -> CheckResult | None:
    """Check one server now. None when another check of it is running (claim lost).

    With `report_as`, the result (or {"claimed": false}) is also left in the cache for
    whoever enqueued the check and waits for it (health_check_report).
    """
    checks = servers_check(server_ids=[server_id], concurrency=1)
    check = checks[0] if checks else None
    if report_as:
        report = check.as_dict() if check is not None else {"claimed": False}
        cache.set(check_report_key(report_as), report, timeout=600)
    return check


def health_check_report(*, report_as: str, wait: float) -> dict[str, Any] | None:
    """The result a check run with `report_as` left, waiting at most `wait` seconds."""
    deadline = time.monotonic() + wait
    while True:
        report = cache.get(check_report_key(report_as))
        if report is not None or time.monotonic() >= deadline:
            return report if isinstance(report, dict) else None
        time.sleep(0.05)


def servers_check_batch(
    *,
    server_ids: list[int],
    concurrency: int,
    progress: Progress | None = None,
    sweep: bool = False,
) -> dict[str, Any]:
    """Check the given servers; return a summary (counts by outcome, time taken).

    sweep=True marks a batch of a beat sweep: when it ends, however it ends, it counts
    itself off the sweep's pending batches (see health_sweep_plan).
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

    A batch runs one chunk (`concurrency` sessions) after another, at most BATCH_ROUNDS, each
    as long as its slowest server's handshake + listing timeouts, the close grace and the
    credential pre-step's budget. Each timeout is bounded
    (MAX_TIMEOUT_MS) before anything is added: no user's values can overflow or stall it.
    """
    worst_ms = McpServer.objects.enabled().aggregate(
        init=Max("init_timeout_ms"), listing=Max("timeout_ms")
    )
    worst = (
        (min(worst_ms["init"] or 0, MAX_TIMEOUT_MS) + min(worst_ms["listing"] or 0, MAX_TIMEOUT_MS))
        / 1000
        + CLOSE_GRACE
        + REFRESH_BUDGET_SECONDS
    )
    if worst > time_limit:
        # Even one chunk may overrun: the soft time limit then releases the claims.
        logger.warning("a server's timeouts (%.0f s) exceed a batch's %.0f s", worst, time_limit)
    return concurrency * max(1, min(BATCH_ROUNDS, int(time_limit // worst)))


def _sweep_batch_done() -> None:
    try:
        if cache.decr(SWEEP_PENDING_KEY) <= 0:
            cache.delete(SWEEP_PENDING_KEY)
            record_sweep_finished()  # the last batch of the sweep
    except ValueError:
        pass  # the marker expired meanwhile: nothing left to count off


@dataclass(frozen=True)
class SweepPlan:
    """The batches of one sweep (health_sweep enqueues them), or why there are none."""

    batches: list[list[int]]
    batch_size: int
    servers: int
    skipped: str = ""

    def summary(self) -> dict[str, Any]:
        body = {
            "servers": self.servers,
            "batches": len(self.batches),
            "batch_size": self.batch_size,
        }
        return {**body, "skipped": self.skipped} if self.skipped else body


def health_sweep_plan(*, concurrency: int, time_limit: float) -> SweepPlan:
    """Split a sweep of every enabled server into batches, each small enough
    (sweep_batch_size) to end within `time_limit` even if all of its servers hang.

    Enqueue once: while the previous sweep still has batches pending, a new sweep is
    skipped (no batches), so slow sweeps cannot pile batches up behind each other in the
    queue. The marker expires on its own should a batch be lost with its worker.
    """
    ids = list(McpServer.objects.enabled().order_by("id").values_list("id", flat=True))
    size = sweep_batch_size(concurrency=concurrency, time_limit=time_limit)
    batches = [ids[start : start + size] for start in range(0, len(ids), size)]
    expires = max(settings.MCPCONTROL_HEALTH_INTERVAL_SECONDS, time_limit * len(batches))
    if batches and not cache.add(SWEEP_PENDING_KEY, len(batches), timeout=int(expires) + 1):
        logger.info("health sweep skipped: the previous sweep still has batches pending")
        return SweepPlan(batches=[], batch_size=size, servers=len(ids), skipped="pending")
    plan = SweepPlan(batches=batches, batch_size=size, servers=len(ids))
    logger.info("health sweep planned: %s", plan.summary())
    return plan
