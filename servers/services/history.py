"""Check history: what the sweep recorded per check (CheckResult), read and pruned."""

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from servers.models import CheckResult

logger = logging.getLogger(__name__)
# Rows deleted per statement: a long backlog (history just turned on, a week of 10k servers)
# is removed in bounded statements, never one huge transaction.
PRUNE_CHUNK = 5000


def check_results_prune(*, days: int | None = None) -> int:
    """Delete check history older than `days` (MCPCONTROL_CHECK_HISTORY_DAYS); return how
    many rows went."""
    keep = settings.MCPCONTROL_CHECK_HISTORY_DAYS if days is None else days
    cutoff = timezone.now() - timedelta(days=keep)
    deleted = 0
    while True:
        ids = list(
            CheckResult.objects.filter(checked_at__lt=cutoff).values_list("id", flat=True)[
                :PRUNE_CHUNK
            ]
        )
        if not ids:
            break
        deleted += CheckResult.objects.filter(id__in=ids).delete()[0]
    if deleted:
        logger.info("check history: pruned %d rows older than %d days", deleted, keep)
    return deleted
