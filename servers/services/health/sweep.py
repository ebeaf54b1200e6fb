"""The beat's sweep: batches sized to end in time, enqueued once."""

import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Max

from mcpcontrol.lib.metrics import record_sweep_finished
from servers.mcp_client.probe import CLOSE_GRACE
from servers.models import MAX_TIMEOUT_MS, McpServer
from servers.services.health.state import BATCH_ROUNDS, REFRESH_BUDGET_SECONDS, SWEEP_PENDING_KEY

logger = logging.getLogger(__name__)


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


def sweep_batch_done() -> None:
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
