"""Health columns and the "Check now" action for the server admin.

Mixed into the McpServer ModelAdmin. Wire in: actions "check_now"; list_display
"health_outcome", "response_time_display", "tool_count", "last_error_display".
"""

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.text import Truncator

from servers import services
from servers.models import McpServer, words

OUTCOME_COLOURS = {
    "healthy": "#2e7d32",
    "disabled": "#757575",
    "unknown": "#757575",
    "never_checked": "#757575",
    "degraded": "#ef6c00",
    "timeout": "#ef6c00",
    "auth_required": "#ef6c00",
}
ERROR_COLOUR = "#c62828"
# The admin request waits for the checks: keep a batch small and parallel.
ADMIN_CHECK_LIMIT = 50
ADMIN_CHECK_CONCURRENCY = 10


def state_help() -> str:
    """The tooltip of every state: what the words mean and when a failure counts."""
    threshold = settings.MCPCONTROL_HEALTH_FAILURE_THRESHOLD
    return (
        f"A failing server is 'degraded' until {threshold} checks in a row failed "
        f"(MCPCONTROL_HEALTH_FAILURE_THRESHOLD={threshold}); then it shows the failure "
        "(unreachable, timeout, protocol error). 'auth required' shows at once: it needs a "
        "person to connect or fix the credential."
    )


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

    @admin.display(description="State", ordering="consecutive_failures")
    def state_display(self, obj: McpServer) -> str:
        state = obj.state
        return format_html(
            '<span style="color:{};font-weight:bold" title="{}">{}</span>',
            OUTCOME_COLOURS.get(state, ERROR_COLOUR),
            state_help(),
            McpServer.State(state).label,
        )

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
        """Plain words first; the raw text in the tooltip (list) or a toggle (change form)."""
        if not obj.error_message:
            return "—"
        words = obj.state_message or obj.error_message
        return format_html(
            '<span title="{}">{}</span>', obj.error_message, Truncator(words).chars(90)
        )

    @admin.display(description="Last error")
    def last_error_full(self, obj: McpServer) -> str:
        if not obj.error_message:
            return "—"
        when = f"{obj.last_error_at:%Y-%m-%d %H:%M} UTC: " if obj.last_error_at else ""
        return format_html(
            "{}{}<details><summary>raw detail</summary><pre>{}</pre></details>",
            when, obj.state_message or obj.error_message, obj.error_message,
        )  # fmt: skip

    def report_check(
        self, request: HttpRequest, server: McpServer, check: services.CheckResult
    ) -> None:
        """One message per check: the outcome in plain words (raw detail after it)."""
        if check.outcome == "healthy":
            tools = f", {check.tool_count} tool(s)" if check.tool_count is not None else ""
            text = f"{server.name}: healthy ({check.response_time_ms} ms{tools})"
            self.message_user(request, text, messages.SUCCESS)
            return
        where = words.where(transport=server.transport_type, url=server.url,
                            command=server.command)  # fmt: skip
        plain = words.plain_error(where=where, outcome=check.outcome, message=check.message)
        text = f"{server.name}: {plain} (detail: {check.message})"
        self.message_user(request, text, messages.WARNING)

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
        servers = McpServer.objects.in_bulk([c.server_id for c in checks])
        for check in checks:
            if check.server_id in servers:
                self.report_check(request, servers[check.server_id], check)
        if len(checks) < len(ids):
            self.message_user(
                request, f"{len(ids) - len(checks)} server(s) were already being checked.",
                messages.INFO,
            )  # fmt: skip
