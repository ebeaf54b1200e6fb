"""Celery tasks of the servers app: each loads by id and calls services; services never
import tasks (a sweep's fan-out is planned by a service and enqueued here)."""

from typing import Any

from celery import Task, shared_task
from celery.signals import task_failure
from django.conf import settings

# A batch must fit in this share of the soft time limit even if all its servers hang: the
# hard limit kills the worker process, and its claims would then wait out their lease.
BATCH_SHARE_OF_SOFT_LIMIT = 0.5
# A sweep enqueued less than this share of the beat interval after the previous one is
# skipped: two beats running by mistake then sweep once per interval, not twice (any share
# above one half does; the rest is slack for a sweep picked up late from a busy queue).
SPACING_SHARE_OF_INTERVAL = 0.75


def _batch_time_limit() -> float:
    return settings.CELERY_TASK_SOFT_TIME_LIMIT * BATCH_SHARE_OF_SOFT_LIMIT


@shared_task(name="servers.tasks.health_sweep", bind=True)
def health_sweep(self: Task[[], dict[str, object]]) -> dict[str, object]:
    """Fan a sweep of every enabled server out into health_check_batch tasks, on this task's
    queue. Beat runs it (see ensure_schedules); the name is the contract."""
    from servers import services  # imported here so tasks and services never import each other

    plan = services.health_sweep_plan(
        concurrency=settings.MCPCONTROL_HEALTH_CONCURRENCY,
        time_limit=_batch_time_limit(),
        spacing=SPACING_SHARE_OF_INTERVAL * services.health_sweep_interval(),
    )
    queue = (self.request.delivery_info or {}).get("routing_key")
    for batch in plan.batches:
        # celery-types wants a queue, but Celery routes None like no queue (app/routes.py).
        health_check_batch.apply_async((batch,), {"sweep": True}, queue=queue)  # type: ignore[arg-type]
    return plan.summary()


@shared_task(name="servers.tasks.health_check_batch")
def health_check_batch(server_ids: list[int], sweep: bool = False) -> dict[str, object]:
    """Check these servers; ids another check holds are skipped (never two checks at once).

    On the soft time limit, SoftTimeLimitExceeded unwinds the check: the probes are cancelled
    (stdio children killed) and the claim of the unfinished chunk is released before it
    propagates, so the servers are free for the next sweep instead of waiting out the lease.
    """
    from servers import services

    return services.servers_check_batch(
        server_ids=server_ids, concurrency=settings.MCPCONTROL_HEALTH_CONCURRENCY, sweep=sweep,
        time_limit=_batch_time_limit(),
    )  # fmt: skip


@shared_task(name="servers.tasks.health_check_server", bind=True)
def health_check_server(self: Task[[int], Any], server_id: int) -> dict[str, Any] | None:
    """Check one server now (the API's refresh, which waits for the report under this task's
    id); a check of it already running elsewhere makes this a no-op (None)."""
    from servers import services

    check = services.server_check(server_id=server_id, report_as=self.request.id or "")
    return check.as_dict() if check is not None else None


@shared_task(name="servers.tasks.check_results_prune")
def check_results_prune() -> int:
    """Beat (hourly): delete check history older than MCPCONTROL_CHECK_HISTORY_DAYS."""
    from servers import services

    return services.check_results_prune()


# The names beat rows and queued messages used before 2026-12 (one release of grace; the
# data migration servers.0004 renames the beat rows).
@shared_task(name="servers.tasks.refresh_all")
def refresh_all() -> str:
    """Old beat entry: starts a sweep under the new name."""
    return str(health_sweep.delay().id)


@shared_task(name="servers.tasks.refresh_batch")
def refresh_batch(server_ids: list[int], sweep: bool = False) -> dict[str, object]:
    return health_check_batch.run(server_ids, sweep)


@shared_task(name="servers.tasks.refresh_server")
def refresh_server(server_id: int) -> dict[str, Any] | None:
    from servers import services

    check = services.server_check(server_id=server_id)
    return check.as_dict() if check is not None else None


_BATCH_TASKS = {health_check_batch.name, refresh_batch.name}


@task_failure.connect
def _release_lost_batch(
    sender: Any = None, args: Any = None, kwargs: Any = None, exception: Any = None, **_: Any
) -> None:
    """A batch whose pool process died (killed, out of memory) frees its servers at once
    instead of leaving them to their lease, and a sweep's batch is counted off the sweep so
    the next one is not held back. Runs in the worker's main process."""
    from billiard.exceptions import WorkerLostError

    if getattr(sender, "name", None) in _BATCH_TASKS and isinstance(exception, WorkerLostError):
        from servers import services

        args, kwargs = list(args or [[]]), dict(kwargs or {})
        sweep = bool(kwargs.get("sweep", args[1] if len(args) > 1 else False))
        services.servers_release_claims(
            server_ids=list(args[0]), sweep=sweep, time_limit=_batch_time_limit()
        )
