from django.db.models import Q, QuerySet
from django_filters import rest_framework as filters

from mcpcontrol.api.filters import IdFilter
from servers.models import McpServer


class McpServerFilterSet(filters.FilterSet):
    """?query= searches name, description and tags; scope and status are exact choices."""

    query = filters.CharFilter(method="filter_query", max_length=200)
    scope = filters.ChoiceFilter(choices=McpServer.Scope.choices)
    status = filters.ChoiceFilter(choices=McpServer.Status.choices)

    class Meta:
        model = McpServer
        fields: tuple[str, ...] = ("query", "scope", "status")

    def filter_query(
        self, queryset: QuerySet[McpServer], name: str, value: str
    ) -> QuerySet[McpServer]:
        # tags is a JSON list: matching its text form is portable (SQLite and PostgreSQL).
        return queryset.filter(
            Q(name__icontains=value) | Q(description__icontains=value) | Q(tags__icontains=value)
        )


class AdminMcpServerFilterSet(McpServerFilterSet):
    user_id = IdFilter(field_name="owner_id")

    class Meta(McpServerFilterSet.Meta):
        fields = ("query", "scope", "status", "user_id")
