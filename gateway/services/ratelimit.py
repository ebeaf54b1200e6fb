"""Per-agent rate limits on the gateway's tools/call, shared by every worker process through
Django's cache (Redis in production): a fixed one-minute window per agent, counted with the
cache's atomic add + incr.

A limit must never become an outage: when the cache cannot count (Redis down, a key evicted
between add and incr), the call goes ahead. That is logged once per process until the cache
counts again, not once per call.
"""

import logging
import math
import time

from asgiref.sync import sync_to_async
from django.core.cache import cache

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60


class _FailOpen:
    """Whether the last count failed: the warning is written when counting starts failing."""

    failing = False

    @classmethod
    def failed(cls, exc: Exception) -> None:
        if not cls.failing:
            cls.failing = True
            logger.warning("rate limits not enforced: the cache cannot count (%s: %s)",
                           type(exc).__name__, exc)  # fmt: skip

    @classmethod
    def counted(cls) -> None:
        if cls.failing:
            cls.failing = False
            logger.warning("rate limits enforced again: the cache counts")


def rate_limit_retry_after(
    *, agent_id: int, per_minute: int, now: float | None = None
) -> int | None:
    """Count one call of the agent: None when it is within `per_minute` (0: unlimited), else
    the seconds until the window ends and calls are admitted again."""
    if per_minute <= 0:
        return None
    now = time.time() if now is None else now
    window = int(now // WINDOW_SECONDS)
    key = f"gateway:rate:{agent_id}:{window}"
    try:
        cache.add(key, 0, timeout=WINDOW_SECONDS * 2)  # no-op when another call created it
        count = int(cache.incr(key))
    except Exception as exc:  # an outage or an evicted key: admit the call (module docstring)
        _FailOpen.failed(exc)
        return None
    _FailOpen.counted()
    if count <= per_minute:
        return None
    return max(1, math.ceil((window + 1) * WINDOW_SECONDS - now))


async def rate_limit_refusal(*, agent_id: int, per_minute: int) -> str | None:
    """The tool error text for a call over the agent's limit, or None to go ahead. Costs
    nothing without a limit; with one, the cache round trip runs off the event loop (a
    Redis timeout must not stall other calls)."""
    if per_minute <= 0:
        return None
    retry = await sync_to_async(rate_limit_retry_after, thread_sensitive=False)(
        agent_id=agent_id, per_minute=per_minute
    )
    if retry is None:
        return None
    return (f"rate limited: this agent may make {per_minute} tool calls per minute; "
            f"retry in {retry} s")  # fmt: skip
