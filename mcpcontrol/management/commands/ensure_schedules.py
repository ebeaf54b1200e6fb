from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django_celery_beat.models import IntervalSchedule, PeriodicTask

# name → (task, interval seconds). Enqueue-once: an existing entry is left as the operator
# edited it in the admin; only missing entries are created.
SCHEDULES = {
    "Health checks of all enabled servers": (
        "servers.tasks.health_sweep",
        settings.MCPCONTROL_HEALTH_INTERVAL_SECONDS,
    ),
    "Refresh OAuth grants expiring soon": (
        "credentials.tasks.grant_refresh_due",
        settings.MCPCONTROL_OAUTH_REFRESH_INTERVAL_SECONDS,
    ),
    "Delete expired stored tokens": ("tokens.tasks.tokens_cleanup_expired", 3600),
    "Prune old check history": ("servers.tasks.check_results_prune", 3600),
}


class Command(BaseCommand):
    help = "Create the default beat schedule entries (editable afterwards in the admin)."

    def handle(self, *args: Any, **options: Any) -> None:
        for name, (task, seconds) in SCHEDULES.items():
            interval, _ = IntervalSchedule.objects.get_or_create(
                every=seconds, period=IntervalSchedule.SECONDS
            )
            _, created = PeriodicTask.objects.get_or_create(
                name=name, defaults={"task": task, "interval": interval}
            )
            self.stdout.write(f"{name}: {'created' if created else 'exists'} (every {seconds}s)")
