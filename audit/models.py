from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    """One recorded change (or secret disclosure) of one entity, by a user or by the system."""

    class Action(models.TextChoices):
        """Seed 004's create/update/delete (and toggle) for every entity, then ours."""

        CREATE = "create"
        UPDATE = "update"
        DELETE = "delete"
        TOGGLE = "toggle"
        TOOLS_CHANGED = "tools_changed"
        STATUS_CHANGED = "status_changed"
        SECRET_READ = "secret_read"
        REFRESH = "refresh"
        REFRESH_FAILED = "refresh_failed"
        REVOKE = "revoke"
        NEEDS_REAUTH = "needs_reauth"
        OAUTH_DISCOVERED = "oauth_discovered"
        OAUTH_REGISTERED = "oauth_registered"

    action = models.CharField(max_length=32, choices=Action.choices, db_index=True)
    # server, agent, connection, grant, variable, token (the vault), jwt: a model's
    # `audit_entity`, else its model name.
    entity_type = models.CharField(max_length=64, db_index=True)
    entity_id = models.CharField(max_length=64, db_index=True)
    entity_repr = models.CharField(max_length=200, blank=True)
    # Null actor means the system (a worker, beat, a management command without a user).
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # {field: {"old": ..., "new": ...}}; secret fields only ever hold "[redacted]".
    changes = models.JSONField(default=dict, blank=True)
    timestamp = models.DateTimeField(auto_now_add=True, db_index=True)
    request_ip = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ("-timestamp", "-id")
        indexes = [models.Index(fields=("entity_type", "entity_id", "timestamp"))]

    def __str__(self) -> str:
        return f"{self.action} {self.entity_type}:{self.entity_id}"
