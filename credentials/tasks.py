"""Celery tasks of the credentials app: the beat's refresh of due grants, in batches."""

from typing import Any

from celery import shared_task
from django.conf import settings

# Grants per batch task: enough to keep the request pool busy, few enough to end well
# inside the soft time limit even if every request of the batch times out.
BATCH_SIZE = 500


@shared_task(name="credentials.tasks.grant_refresh_due")
def grant_refresh_due() -> int:
    """Beat (every MCPCONTROL_OAUTH_REFRESH_INTERVAL_SECONDS): enqueue the due grants in
    batches. Enqueueing twice is harmless: the claim lets one worker through per grant."""
    from credentials import services  # imported here so tasks and services never import each other

    ids = services.grant_ids_due()
    for start in range(0, len(ids), BATCH_SIZE):
        grant_refresh_batch.delay(ids[start : start + BATCH_SIZE])
    return len(ids)


@shared_task(name="credentials.tasks.grant_refresh_batch")
def grant_refresh_batch(grant_ids: list[int]) -> dict[str, int]:
    """Refresh these grants concurrently; counts of outcomes."""
    from credentials import services

    budget = settings.CELERY_TASK_SOFT_TIME_LIMIT * 0.8
    outcomes = services.grants_refresh(grant_ids=grant_ids, budget=budget)
    counts: dict[str, int] = {}
    for outcome in outcomes.values():
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


# The names beat rows and queued messages used before 2026-12 (one release of grace; the
# data migration credentials.0002 renames the beat rows).
@shared_task(name="tokens.tasks.oauth_tokens_refresh_due")
def oauth_tokens_refresh_due() -> int:
    return grant_refresh_due.run()


@shared_task(name="tokens.tasks.oauth_token_refresh")
def oauth_token_refresh(server_id: int, connection_id: Any = None) -> bool:
    """The old single-grant refresh, queued before the upgrade: refresh what is due now."""
    return grant_refresh_due.run() > 0
