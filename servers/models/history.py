"""CheckResult: one health check's outcome, kept for a retention window (history, charts)."""

from datetime import datetime

from django.db import models


class CheckResultQuerySet(models.QuerySet["CheckResult"]):
    def since(self, when: datetime) -> "CheckResultQuerySet":
        return self.filter(checked_at__gte=when)


class CheckResult(models.Model):
    """One health check of one server: when, what it found, how long it took. Written in
    bulk by the sweep (one INSERT per claimed chunk), pruned after
    MCPCONTROL_CHECK_HISTORY_DAYS. Compact on purpose: no message text (the server row keeps
    the latest error), so a row is a few dozen bytes."""

    class Outcome(models.TextChoices):
        HEALTHY = "healthy"
        UNREACHABLE = "unreachable"
        TIMEOUT = "timeout"
        AUTH_REQUIRED = "auth_required"
        PROTOCOL_ERROR = "protocol_error"

    server = models.ForeignKey(
        "servers.McpServer", on_delete=models.CASCADE, related_name="check_results"
    )
    checked_at = models.DateTimeField()
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    tool_count = models.PositiveIntegerField(null=True, blank=True)
    # A finer cause than the outcome (connection_refused, dns, tls, http_401, ...), from
    # servers.services.health.words; blank for a healthy check.
    error_class = models.CharField(max_length=40, blank=True)

    objects = CheckResultQuerySet.as_manager()

    class Meta:
        ordering = ("-checked_at", "-id")
        indexes = [
            models.Index(fields=("server", "-checked_at"), name="check_server_time"),
            models.Index(fields=("checked_at",), name="check_time"),
        ]

    def __str__(self) -> str:
        return f"{self.server_id} {self.checked_at:%Y-%m-%d %H:%M:%S} {self.outcome}"
