from rest_framework import serializers

from audit.models import AuditEvent


class AuditEventSerializer(serializers.ModelSerializer[AuditEvent]):
    id = serializers.SerializerMethodField()
    # A string, as every id the API returns (seed 004's ids are ObjectId strings).
    user_id = serializers.SerializerMethodField()
    username = serializers.SerializerMethodField()

    class Meta:
        model = AuditEvent
        fields = ("id", "action", "entity_type", "entity_id", "user_id", "username", "changes",
                  "timestamp")  # fmt: skip

    def get_id(self, event: AuditEvent) -> str:
        return str(event.pk)

    def get_user_id(self, event: AuditEvent) -> str | None:
        return None if event.actor_id is None else str(event.actor_id)

    def get_username(self, event: AuditEvent) -> str | None:
        actor = event.actor  # no query when actor_id is null
        return actor.get_username() if actor is not None else None
