"""Health columns and the "Check now" action for the server admin.

Mixed into the McpServer ModelAdmin. Wire in: actions "check_now"; list_display
"health_outcome", "response_time_display", "tool_count", "last_error_display".
"""

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from servers import services
from servers.models import McpServer

OUTCOME_COLOURS = {
    "healthy": "#2e7d32",
    "disabled": "#757575",
    "unknown": "#757575",
    "timeout": "#ef6c00",
    "auth_required": "#ef6c00",
}
ERROR_COLOUR = "#c62828"
# The admin request waits for the checks: keep a batch small and parallel.
ADMIN_CHECK_LIMIT = 50
ADMIN_CHECK_CONCURRENCY = 10


if TYPE_CHECKING:
    # Typed as the McpServer admin it is mixed into; a plain mixin at run time, where
    # Django's ModelAdmin is not subscriptable.
    _ServerAdmin = admin.ModelAdmin[McpServer]
else:
    _ServerAdmin = object


class HealthAdminMixin(_ServerAdmin):
    """Display methods and the "Check now" action; all data comes from the health services."""

    def _state(self, obj: McpServer) -> dict[str, Any]:
        # One cache read per row: list pages show at most list_per_page rows.
        return services.server_health_state(server=obj)

    @admin.display(description="Health")
    def health_outcome(self, obj: McpServer) -> str:
        state = self._state(obj)
        outcome = state.get("outcome") or "unknown"
        colour = OUTCOME_COLOURS.get(outcome, ERROR_COLOUR)
        return format_html(
            '<span style="color:{}" title="{}">{}</span>',
            colour,
            state.get("message") or "",
            outcome.replace("_", " "),
        )

    @admin.display(description="Response time")
    def response_time_display(self, obj: McpServer) -> str:
        ms = self._state(obj).get("response_time_ms")
        return "—" if ms is None else f"{ms} ms"

    @admin.display(description="Tools")
    def tool_count(self, obj: McpServer) -> int:
        return obj.num_tools

    @admin.display(description="Last error")
    def last_error_display(self, obj: McpServer) -> str:
        if not obj.error_message:
            return "—"
        when = obj.last_error_at.strftime("%Y-%m-%d %H:%M") if obj.last_error_at else ""
        return f"{when} {obj.error_message[:120]}".strip()

    @admin.action(description="Check now", permissions=["change"])
    def check_now(self, request: HttpRequest, queryset: QuerySet[McpServer]) -> None:
        ids = list(queryset.values_list("id", flat=True)[: ADMIN_CHECK_LIMIT + 1])
        if len(ids) > ADMIN_CHECK_LIMIT:
            self.message_user(
                request,
                f"Select at most {ADMIN_CHECK_LIMIT} servers; the scheduler checks the rest.",
                messages.WARNING,
            )
            return
        checks = services.servers_check(server_ids=ids, concurrency=ADMIN_CHECK_CONCURRENCY)
        for check in checks:
            level = messages.SUCCESS if check.outcome == "healthy" else messages.WARNING
            detail = f": {check.message}" if check.message else ""
            self.message_user(request, f"{check.name}: {check.outcome}{detail}", level)
        if len(checks) < len(ids):
            self.message_user(
                request, f"{len(ids) - len(checks)} server(s) were already being checked.",
                messages.INFO,
            )  # fmt: skip
