from django_filters import rest_framework as filters

from audit.models import AuditEvent
from mcpcontrol.api.filters import IdFilter, UtcIsoDateTimeFilter


class AuditEventFilterSet(filters.FilterSet):
    entity_type = filters.CharFilter(max_length=64)
    user_id = IdFilter(field_name="actor_id")
    action = filters.ChoiceFilter(choices=AuditEvent.Action.choices)
    start_date = UtcIsoDateTimeFilter(field_name="timestamp", lookup_expr="gte")
    end_date = UtcIsoDateTimeFilter(field_name="timestamp", lookup_expr="lte")

    class Meta:
        model = AuditEvent
        fields = ("entity_type", "user_id", "action", "start_date", "end_date")
