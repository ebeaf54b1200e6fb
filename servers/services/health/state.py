"""The health engine's state: what one check found, and what the cache keeps of it."""

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from django.core.cache import cache

from servers.models import McpServer

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


class Tally:
    """Progress over a whole run, reported as (done, total) of the servers asked for:
    probed, refused (disabled, no credential, URL refused) and skipped (another check holds
    them) all count, so a caller's "checked 11/11" matches its 11-row table."""

    def __init__(self, total: int, progress: Progress | None) -> None:
        self.done, self.total, self.progress = 0, total, progress

    def add(self, count: int = 1) -> None:
        if count and self.progress is not None:
            self.done += count
            self.progress(self.done, self.total)


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
        """JSON-ready (it goes to the cache as JSON, docs/storage.md): a number id stays a
        number, an ObjectId (MongoDB) becomes its string."""
        values = asdict(self)
        if not isinstance(values["server_id"], int):
            values["server_id"] = str(values["server_id"])
        return values


# Enqueue once (see servers.services.health.sweep): how many batches of the current beat
# sweep are still to run, and whether a sweep started less than its spacing ago.
SWEEP_PENDING_KEY = "health:sweep:pending-batches"
SWEEP_STARTED_KEY = "health:sweep:started"


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
