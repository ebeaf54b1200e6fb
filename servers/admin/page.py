"""The server page's operator parts: buttons, tools table, check history, and the check
that follows a save.

Mixed into the McpServer ModelAdmin (before HealthAdminMixin, which has report_check).
"""

import contextvars
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from servers import services
from servers.models import McpServer
from servers.tasks import health_check_server as health_check_server_task

HISTORY_ROWS = 20
# A saved server's check: attribute on the request, run once the save has committed.
_CHECK_AFTER_SAVE = "_mcpcontrol_check_after_save"
# Who is looking at the page: a read-only field's callable gets the object only, and the
# shadowing lines may name only servers the viewer can see.
_viewer: contextvars.ContextVar[Any] = contextvars.ContextVar("server_page_viewer", default=None)

if TYPE_CHECKING:
    _ServerAdmin = admin.ModelAdmin[McpServer]
else:
    _ServerAdmin = object


class ServerPageMixin(_ServerAdmin):
    if TYPE_CHECKING:

        def report_check(  # HealthAdminMixin's
            self, request: HttpRequest, server: McpServer, check: services.CheckResult
        ) -> None: ...

    @admin.display(description="Actions")
    def buttons(self, obj: McpServer) -> str:
        """Buttons inside the change form post it to their own URL (formaction): no nesting."""
        check = reverse("admin:servers_mcpserver_check", args=[obj.pk])
        toggle = reverse("admin:servers_mcpserver_toggle", args=[obj.pk])
        return format_html(
            '<button type="submit" class="button" formaction="{}" formnovalidate>Check now'
            '</button> <button type="submit" class="button" formaction="{}" formnovalidate>'
            "{}</button>",
            check, toggle, "Disable" if obj.is_enabled else "Enable",
        )  # fmt: skip

    @admin.display(description="Tools")
    def tools_table(self, obj: McpServer) -> str:
        tools = [t for t in obj.tools or [] if isinstance(t, dict)]
        if not tools:
            return "No tools listed yet."
        rows = format_html_join(
            "",
            "<tr><td><code>{}</code></td><td>{}</td><td><details><summary>input schema"
            "</summary><pre>{}</pre></details></td></tr>",
            ((t.get("name", "?"), t.get("description") or "", _json(t.get("inputSchema")))
             for t in tools),
        )  # fmt: skip
        return format_html(
            "<table><thead><tr><th>Name</th><th>Description</th><th>Schema</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            rows,
        )

    @admin.display(description="Path shadowing")
    def path_shadowing(self, obj: McpServer) -> str:
        """Which server answers at this path for whom (servers.services.server_path_shadowing)."""
        lines = services.server_path_shadowing(server=obj, viewer=_viewer.get())
        if not lines:
            return "—"
        return format_html_join(mark_safe("<br>"), "{}", ((line,) for line in lines))

    @admin.display(description="Latest checks")
    def history_table(self, obj: McpServer) -> str:
        checks = list(obj.check_results.order_by("-checked_at", "-id")[:HISTORY_ROWS])
        if not checks:
            return "No checks recorded yet."
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((f"{c.checked_at:%Y-%m-%d %H:%M:%S}", c.outcome.replace("_", " "),
              "—" if c.duration_ms is None else f"{c.duration_ms} ms",
              "—" if c.tool_count is None else c.tool_count, c.error_class or "")
             for c in checks),
        )  # fmt: skip
        return format_html(
            "<table><thead><tr><th>When (UTC)</th><th>Outcome</th><th>Time</th><th>Tools</th>"
            "<th>Cause</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    def check_after_save(self, request: HttpRequest, obj: McpServer) -> None:
        """Called by save_model once a remote, enabled server was saved."""
        if obj.pk is not None and obj.is_remote and obj.is_enabled:
            setattr(request, _CHECK_AFTER_SAVE, obj.pk)

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """The admin saves inside a transaction: the check runs once it has committed (a
        worker must see the row), bounded by MCPCONTROL_REFRESH_WAIT_SECONDS; the save
        itself never waits on the upstream."""
        viewer = _viewer.set(request.user)
        try:
            response = super().changeform_view(request, object_id, form_url, extra_context)
            if isinstance(response, TemplateResponse):
                response.render()  # while the viewer is known (path_shadowing reads it)
        finally:
            _viewer.reset(viewer)
        server_id = getattr(request, _CHECK_AFTER_SAVE, None)
        if server_id is not None:
            self._check_saved(request, server_id)
        return response

    def _check_saved(self, request: HttpRequest, server_id: int) -> None:
        task = health_check_server_task.delay(server_id)
        report = services.health_check_report(
            report_as=task.id, wait=settings.MCPCONTROL_REFRESH_WAIT_SECONDS
        )
        server = McpServer.objects.filter(pk=server_id).first()
        if server is None:
            return
        if report is None or report.get("claimed") is False:
            self.message_user(
                request, f"{server.name}: the check is still running; its result will show "
                "on this page.", messages.INFO,
            )  # fmt: skip
            return
        self.report_check(request, server, services.CheckResult(**report))


def _json(value: Any) -> str:
    import json

    return json.dumps(value or {}, indent=2, sort_keys=True)[:5000]
