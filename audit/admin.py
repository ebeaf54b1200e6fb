from typing import TYPE_CHECKING

from django.contrib import admin
from django.http import HttpRequest

from audit.models import AuditEvent

# Typed with their model for mypy; Django's admin and form classes are not subscriptable at
# run time, so the plain classes are used there.
if TYPE_CHECKING:
    _AuditEventAdmin = admin.ModelAdmin[AuditEvent]
else:
    _AuditEventAdmin = admin.ModelAdmin


@admin.register(AuditEvent)
class AuditEventAdmin(_AuditEventAdmin):
    """Read-only: an audit trail that operators could edit would prove nothing."""

    list_display = ("timestamp", "action", "entity_type", "entity_id", "entity_repr", "actor")
    list_filter = ("action", "entity_type")
    search_fields = ("entity_id", "entity_repr", "actor__username", "request_id")
    date_hierarchy = "timestamp"
    list_select_related = ("actor",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False
