"""The beat's sweep: batches sized to end in time, enqueued once.

Beat runs the health_sweep task, which plans a sweep here and enqueues its batches; any
worker takes a batch, and each chunk of it claims its servers (checks.py), so two workers
never check one server at the same time.

Two markers in the cache keep a sweep single however many times it is enqueued ("enqueue
once"):
- pending: how many batches of the current sweep are still to run. While any is, a new
  sweep is skipped, so sweeps slower than the interval cannot pile batches up in the queue.
  Each batch counts itself off when it ends, however it ends; a batch whose pool process
  died is counted off by the worker's main process (servers.tasks). The marker lives
  `time_limit` after the last batch started or ended, so after a whole worker dies with a
  batch (nothing counts that one off) sweeps resume within that time.
- started: a sweep started less than `spacing` ago. Two beats running by mistake enqueue
  every sweep twice; the later one of each interval finds this marker and is skipped, also
  when the earlier sweep has already finished.
"""

import logging
import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Max
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from mcpcontrol.lib.metrics import record_sweep_finished
from servers.mcp_client.probe import CLOSE_GRACE
from servers.models import MAX_TIMEOUT_MS, McpServer
from servers.services.health.state import (
    BATCH_ROUNDS,
    REFRESH_BUDGET_SECONDS,
    SWEEP_PENDING_KEY,
    SWEEP_STARTED_KEY,
)

logger = logging.getLogger(__name__)

# The task names whose beat schedules set the sweep interval (the old one for one release).
SWEEP_TASKS = ("servers.tasks.health_sweep", "servers.tasks.refresh_all")


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


def pending_ttl(time_limit: float) -> int:
    """How long the pending marker outlives the last batch that started or ended: a live
    batch ends within `time_limit`; at least one interval, so a batch waiting in a busy
    queue does not let the next sweep in."""
    return int(max(settings.MCPCONTROL_HEALTH_INTERVAL_SECONDS, time_limit)) + 1


def sweep_batch_started(*, time_limit: float) -> None:
    """A batch of the current sweep starts: the sweep is alive, keep its pending marker."""
    cache.touch(SWEEP_PENDING_KEY, timeout=pending_ttl(time_limit))


def sweep_batch_done(*, time_limit: float) -> None:
    """Count one batch off the current sweep; the last one ends the sweep."""
    try:
        left = cache.decr(SWEEP_PENDING_KEY)
    except ValueError:
        return  # the marker expired meanwhile: nothing left to count off
    if left <= 0:
        cache.delete(SWEEP_PENDING_KEY)
        record_sweep_finished()  # the last batch of the sweep
    else:
        sweep_batch_started(time_limit=time_limit)


def health_sweep_interval() -> float:
    """The shortest interval, in seconds, at which beat enqueues the sweep (its enabled
    interval schedules); 0 when only other kinds of schedule (crontab, ...) or none run it."""
    rows = PeriodicTask.objects.filter(
        task__in=SWEEP_TASKS, enabled=True, interval__isnull=False
    ).values_list("interval__every", "interval__period")
    return min((timedelta(**{period: every}).total_seconds() for every, period in rows), default=0)


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


def health_sweep_plan(*, concurrency: int, time_limit: float, spacing: float = 0) -> SweepPlan:
    """Split a sweep of every enabled server into batches, each small enough
    (sweep_batch_size) to end within `time_limit` even if all of its servers hang.

    Enqueue once (see the module's docstring): the sweep is skipped, with no batches, when
    another one started less than `spacing` seconds ago ("recent") or the previous one
    still has batches pending ("pending").
    """
    ids = list(McpServer.objects.enabled().order_by("id").values_list("id", flat=True))
    size = sweep_batch_size(concurrency=concurrency, time_limit=time_limit)
    batches = [ids[start : start + size] for start in range(0, len(ids), size)]
    if not batches:
        return SweepPlan(batches=[], batch_size=size, servers=0)
    # Whole seconds (what the cache keeps), rounded up: a shorter spacing could let a second
    # beat's sweep in.
    started = timezone.now().isoformat()
    if spacing > 0 and not cache.add(SWEEP_STARTED_KEY, started, timeout=math.ceil(spacing)):
        logger.info("health sweep skipped: another one started less than %.0f s ago", spacing)
        return SweepPlan(batches=[], batch_size=size, servers=len(ids), skipped="recent")
    if not cache.add(SWEEP_PENDING_KEY, len(batches), timeout=pending_ttl(time_limit)):
        logger.info("health sweep skipped: the previous sweep still has batches pending")
        return SweepPlan(batches=[], batch_size=size, servers=len(ids), skipped="pending")
    plan = SweepPlan(batches=batches, batch_size=size, servers=len(ids))
    logger.info("health sweep planned: %s", plan.summary())
    return plan
