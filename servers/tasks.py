"""Celery tasks of the servers app: each loads by id and calls exactly one service."""

from celery import Task, shared_task
from django.conf import settings

# A batch must fit in this share of the soft time limit even if all its servers hang: the
# hard limit kills the worker process, and its claims would then wait out the 15-minute lease.
BATCH_SHARE_OF_SOFT_LIMIT = 0.5


@shared_task(name="servers.tasks.refresh_all", bind=True)
def refresh_all(self: Task[[], dict[str, object]]) -> dict[str, object]:
    """Fan a sweep of every enabled server out into refresh_batch tasks, on this task's queue.

    Beat runs it (see ensure_schedules); the name is the contract.
    """
    from servers import services  # imported here so tasks and services never import each other

    return services.servers_sweep_enqueue(
        concurrency=settings.MCPCONTROL_HEALTH_CONCURRENCY,
        time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT * BATCH_SHARE_OF_SOFT_LIMIT,
        queue=(self.request.delivery_info or {}).get("routing_key"),
    )


@shared_task(name="servers.tasks.refresh_batch")
def refresh_batch(server_ids: list[int], sweep: bool = False) -> dict[str, object]:
    """Check these servers; ids another check holds are skipped (never two checks at once).

    On the soft time limit, SoftTimeLimitExceeded unwinds the check: the probes are cancelled
    (stdio children killed) and the claim of the unfinished chunk is released before it
    propagates, so the servers are free for the next sweep instead of waiting out the lease.
    """
    from servers import services

    return services.servers_check_batch(
        server_ids=server_ids, concurrency=settings.MCPCONTROL_HEALTH_CONCURRENCY, sweep=sweep
    )


@shared_task(name="servers.tasks.refresh_server")
def refresh_server(server_id: int) -> str | None:
    """Check one server now; a check of it already running elsewhere makes this a no-op."""
    from servers import services

    check = services.server_check(server_id=server_id)
    return check.outcome if check is not None else None
