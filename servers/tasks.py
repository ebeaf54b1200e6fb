"""Celery tasks of the servers app: each loads by id and calls exactly one service."""

from celery import shared_task
from django.conf import settings


@shared_task(name="servers.tasks.refresh_all")
def refresh_all() -> dict[str, object]:
    """Check every enabled server. Beat runs it (see ensure_schedules); the name is the contract."""
    from servers import services  # imported here so tasks and services never import each other

    return services.servers_check_all(concurrency=settings.MCPCONTROL_HEALTH_CONCURRENCY)


@shared_task(name="servers.tasks.refresh_server")
def refresh_server(server_id: int) -> str | None:
    """Check one server now; a check of it already running elsewhere makes this a no-op."""
    from servers import services

    check = services.server_check(server_id=server_id)
    return check.outcome if check is not None else None
