"""Checking servers: claim a chunk, prepare, probe, record, release."""

import logging
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import anyio
from django.core.cache import cache
from django.db.models import Q
from django.utils import timezone

from mcpcontrol.lib.metrics import record_health_check
from servers.mcp_client import ProbeResult, Target
from servers.models import McpServer
from servers.services.health.records import cache_state, plan, save
from servers.services.health.state import (
    CACHE_TTL_SECONDS,
    LEASE_FACTOR,
    CheckResult,
    Progress,
    Tally,
    health_cache_key,
)
from servers.services.health.sweep import sweep_batch_done, sweep_batch_started
from servers.services.health.targets import prepare, probe_all, worst_seconds

logger = logging.getLogger(__name__)


def _claim(server_ids: list[int], *, now: datetime) -> tuple[str, list[McpServer]]:
    """Claim what nobody else is checking; return our claim token and the servers won."""
    free = Q(check_claimed_until=None) | Q(check_claimed_until__lt=now)
    candidates = McpServer.objects.filter(free, id__in=server_ids)
    lease = LEASE_FACTOR * worst_seconds(candidates.only("timeout_ms", "init_timeout_ms"))
    claim = uuid.uuid4().hex
    # Conditional UPDATE = the claim: two workers can't both move the same row off "free".
    McpServer.objects.filter(free, id__in=server_ids).update(
        check_claim=claim, check_claimed_until=now + timedelta(seconds=lease)
    )
    claimed = McpServer.objects.filter(check_claim=claim)
    return claim, list(claimed.select_related("probe_agent"))


def _release(claim: str) -> None:
    McpServer.objects.filter(check_claim=claim).update(check_claim="", check_claimed_until=None)


def servers_release_claims(
    *, server_ids: list[int], sweep: bool = False, time_limit: float = 0
) -> int:
    """Free servers whose checking worker died (Celery reported it lost): no need to wait
    for their lease. A live claim of another worker on the same ids may be freed too; the
    worst that does is one extra check of those servers. A lost batch of a sweep is counted
    off, so the next sweep is not held back until the pending marker expires."""
    released = (
        McpServer.objects.filter(id__in=server_ids)
        .exclude(check_claim="")
        .update(check_claim="", check_claimed_until=None)
    )
    if sweep:
        sweep_batch_done(time_limit=time_limit)
    return released


def _check_claimed(
    servers: list[McpServer], *, claim: str, concurrency: int, tally: Tally
) -> list[CheckResult]:
    """Steps: 1. read the previous states in one cache round trip; 2. build targets (or
    immediate refusals), credentials renewed and resolved for the whole chunk; 3. probe
    concurrently; 4. store what changed, in one transaction; 5. cache the states."""
    previous = cache.get_many([health_cache_key(s.id) for s in servers])
    prepared = prepare(servers, previous)
    targets = {sid: t for sid, t in prepared.items() if isinstance(t, Target)}
    tally.add(len(prepared) - len(targets))  # refused without a session
    probed = anyio.run(lambda: probe_all(targets, concurrency=concurrency, tally=tally))
    now = timezone.now()
    writes, states = [], {}
    for server in servers:
        outcome = probed.get(server.id) or prepared[server.id]
        assert isinstance(outcome, ProbeResult)
        record_health_check(transport=server.transport_type, outcome=str(outcome.outcome),
                            seconds=(outcome.response_time_ms or 0) / 1000)  # fmt: skip
        writes.append(plan(server, outcome, now))
        key = health_cache_key(server.id)
        states[key] = cache_state(outcome, previous.get(key) or {}, now)
    save(writes, claim=claim, now=now)
    cache.set_many(states, timeout=CACHE_TTL_SECONDS)
    return [write.check for write in writes]


def servers_check(
    *, server_ids: list[int], concurrency: int, progress: Progress | None = None
) -> list[CheckResult]:
    """Check the given servers, `concurrency` sessions at a time, one claimed chunk (one
    round of sessions) after another.

    Servers another worker is checking right now are skipped quietly (not in the result).
    `progress(done, total)` runs after each server is done with, total = len(server_ids).
    """
    checks: list[CheckResult] = []
    chunk = max(concurrency, 1)
    tally = Tally(len(server_ids), progress)
    for start in range(0, len(server_ids), chunk):
        asked = server_ids[start : start + chunk]
        claim, servers = _claim(asked, now=timezone.now())
        tally.add(len(asked) - len(servers))  # skipped: held by another check (or gone)
        if not servers:
            continue
        try:
            checks += _check_claimed(servers, claim=claim, concurrency=concurrency, tally=tally)
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
    time_limit: float = 0,
) -> dict[str, Any]:
    """Check the given servers; return a summary (counts by outcome, time taken).

    sweep=True marks a batch of a beat sweep (planned with `time_limit`): it keeps the
    sweep's pending marker alive while it runs and, when it ends, however it ends, counts
    itself off (see health_sweep_plan).
    """
    started = time.monotonic()
    if sweep:
        sweep_batch_started(time_limit=time_limit)
    try:
        checks = servers_check(server_ids=server_ids, concurrency=concurrency, progress=progress)
    finally:
        if sweep:
            sweep_batch_done(time_limit=time_limit)
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
