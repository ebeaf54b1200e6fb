"""The operator console for MCP servers.

Saves go through the services, so the console audits and version-checks exactly like the
API. The credential itself is stored through the credentials port; the credentials app
extends this admin with the OAuth buttons (credentials/admin.py).
"""

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils.http import url_has_allowed_host_and_scheme

from mcpcontrol.lib import ids  # noqa: F401  (registers the <id:...> converter)
from mcpcontrol.lib.fields import UNREADABLE_MESSAGE
from servers import services
from servers.admin.forms import OAUTH_INPUTS, McpServerForm
from servers.admin.health import HealthAdminMixin
from servers.admin.page import ServerPageMixin
from servers.credential_port import credentials
from servers.models import McpServer

if TYPE_CHECKING:
    _McpServerAdmin = admin.ModelAdmin[McpServer]
else:
    _McpServerAdmin = admin.ModelAdmin

OAUTH_FIELDS = ("oauth_grant_type", *(f"oauth_{key}" for key in OAUTH_INPUTS))


class McpServerAdmin(ServerPageMixin, HealthAdminMixin, _McpServerAdmin):
    form = McpServerForm
    # One state column (McpServer.State) instead of status + health + enabled, so the list
    # fits a laptop screen; the error in plain words, the raw text in its tooltip.
    list_display = (
        "name", "state_display", "transport_type", "scope", "owner", "response_time_display",
        "tool_count", "last_error_display",
    )  # fmt: skip
    list_filter = ("scope", "status", "transport_type", "auth_type", "is_enabled",
                   "credential_mode")  # fmt: skip
    search_fields = ("name", "alias", "description", "url", "command", "path")
    list_select_related = ("owner", "group")
    readonly_fields = (
        "credential_stored", "env_names", "headers_names", "status", "version",
        "protocol_version", "tools_last_synced_at", "init_duration_ms", "last_connected_at",
        "last_checked_at", "last_error_at", "error_message", "response_time_ms",
        "consecutive_failures", "tools_display", "created_by", "created_at", "updated_at",
        "health_outcome", "response_time_display", "tool_count", "last_error_display",
        "oauth_metadata", "state_display", "last_error_full", "buttons", "tools_table",
        "history_table", "path_shadowing",
    )  # fmt: skip
    actions = ("check_now", "enable_servers", "disable_servers")

    def get_fieldsets(self, request: HttpRequest, obj: McpServer | None = None) -> Any:
        # What an operator looks for first: the state, the error, the buttons, the tools.
        top = (
            ("State", {"fields": (
                "state_display", "last_error_full", "credential_stored", "buttons",
            )}),
            ("Tools", {"classes": ("collapse",), "fields": ("tools_table",)}),
            ("Check history", {"classes": ("collapse",), "fields": ("history_table",)}),
        ) if obj is not None and obj.pk else ()  # fmt: skip
        return self._without_inputs_for(request, obj, (
            *top,
            (None, {"fields": ("name", "alias", "description", "tags", "path", "path_shadowing",
                             "icon_path")}),
            ("Transport", {"fields": (
                "transport_type", "url", "headers_names", "headers_input", "command", "args",
                "cwd", "env_names", "env_input", "stderr",
            )}),
            ("Upstream auth", {"fields": (
                "auth_type", "credential_mode", "header_name", "prefix", "auth_secret_input",
                "probe_agent", *(() if top else ("credential_stored",)),
            )}),
            ("OAuth", {"fields": (
                *self.oauth_extra_fields, *OAUTH_FIELDS, "oauth_client_secret_input",
                "oauth_headers", "oauth_metadata",
            )}),
            ("Access", {"fields": ("scope", "owner", "group")}),
            ("Options", {"fields": (
                "is_enabled", "startup", "timeout_ms", "init_timeout_ms", "chat_menu",
                "server_instructions", "custom_user_vars", "mcp_options", "catalog",
                "expected_version",
            )}),
            ("Runtime", {"classes": ("collapse",), "fields": (
                "health_outcome", "response_time_display", "tool_count", "status",
                "protocol_version", "last_checked_at", "last_connected_at", "last_error_at",
                "error_message", "response_time_ms", "init_duration_ms", "consecutive_failures",
                "tools_last_synced_at", "tools_display", "version", "created_by", "created_at",
                "updated_at",
            )}),
        ))  # fmt: skip

    def _without_inputs_for(self, request: HttpRequest, obj: McpServer | None, sets: Any) -> Any:
        """The fieldsets less the form's own inputs (secrets, OAuth settings, the version
        check) this viewer cannot use: a read-only page shows model values, and an input is
        no model value (the admin would fail looking it up). Without configure_stdio the
        environment input goes too; its names stay listed (env_names)."""
        hidden = set(self.get_readonly_fields(request, obj)) & set(McpServerForm.declared_fields)
        if obj is not None and obj.pk and not self.has_change_permission(request, obj):
            hidden |= set(McpServerForm.declared_fields)
        return tuple(
            (title, {**options, "fields": tuple(f for f in options["fields"] if f not in hidden)})
            for title, options in sets
        )

    # Read-only fields another app's admin adds to the OAuth section (credentials/admin.py).
    oauth_extra_fields: tuple[str, ...] = ()

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path("<id:pk>/check/", view(self.check_view), name="servers_mcpserver_check"),
            path("<id:pk>/toggle/", view(self.toggle_view), name="servers_mcpserver_toggle"),
            *super().get_urls(),
        ]

    def _button_target(self, request: HttpRequest, pk: str) -> McpServer:
        # for_user first: a server the user may not see is 404, never 403.
        server = get_object_or_404(self.get_queryset(request), pk=pk)
        if request.method != "POST" or not self.has_change_permission(request, server):
            raise PermissionDenied
        return server

    def _button_back(self, request: HttpRequest, server: McpServer) -> HttpResponseRedirect:
        target = request.POST.get("next", "")
        if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
            target = reverse("admin:servers_mcpserver_change", args=[server.pk])
        return HttpResponseRedirect(target)

    def check_view(self, request: HttpRequest, pk: str) -> HttpResponseRedirect:
        """Check now, one server (the dashboard's and the server page's button)."""
        server = self._button_target(request, pk)
        checks = services.servers_check(server_ids=[server.pk], concurrency=1)
        if checks:
            server.refresh_from_db()
            self.report_check(request, server, checks[0])
        else:
            self.message_user(request, f"{server.name} is being checked right now.")
        return self._button_back(request, server)

    def toggle_view(self, request: HttpRequest, pk: str) -> HttpResponseRedirect:
        server = self._button_target(request, pk)
        enabled = not server.is_enabled
        services.server_set_enabled(actor=request.user, server=server, enabled=enabled)
        self.message_user(request, f"{server.name} {'enabled' if enabled else 'disabled'}.")
        return self._button_back(request, server)

    def get_queryset(self, request: HttpRequest) -> QuerySet[McpServer]:
        return McpServer.objects.for_user(request.user).select_related("owner", "group")

    # The console obeys the API's rules (servers.services.access): Django's model
    # permissions, then the per-server rule (owners change their own servers), then the
    # configure_stdio permission for a command.
    def has_change_permission(self, request: HttpRequest, obj: McpServer | None = None) -> bool:
        if obj is None:
            return super().has_change_permission(request)
        return services.server_can_change(user=request.user, server=obj)

    def has_delete_permission(self, request: HttpRequest, obj: McpServer | None = None) -> bool:
        if obj is None:
            return super().has_delete_permission(request)
        return services.server_can_delete(user=request.user, server=obj)

    def get_readonly_fields(self, request: HttpRequest, obj: McpServer | None = None) -> Any:
        fields = tuple(super().get_readonly_fields(request, obj))
        if not request.user.has_perm("servers.configure_stdio"):
            # Running programs is a right. Read-only takes env_input off the form (so a post
            # cannot set it); the fieldsets leave it off the page (it is no model value).
            fields += ("command", "args", "cwd", "env_input")
        return fields

    @admin.display(description="Credential")
    def credential_stored(self, obj: McpServer) -> str:
        state = credentials().state(server=obj) if obj.pk else None
        if state is None:
            return "—"
        parts = [f"{state.kind} stored" if state.has_secret else "none stored"]
        if state.expires_at is not None:
            parts.append(f"expires {state.expires_at:%Y-%m-%d %H:%M}")
        if state.needs_reauth:
            parts.append("needs re-authorization")
        if obj.has_secret("oauth_client_secret"):
            parts.append("OAuth client secret stored")
        return ", ".join(parts)

    @admin.display(description="Stored environment names")
    def env_names(self, obj: McpServer) -> str:
        return _names(obj.env)

    @admin.display(description="Stored header names")
    def headers_names(self, obj: McpServer) -> str:
        return _names(obj.headers)

    @admin.display(description="Discovered tools")
    def tools_display(self, obj: McpServer) -> str:
        names = [t.get("name", "?") for t in obj.tools or [] if isinstance(t, dict)]
        return ", ".join(names) or "—"

    def save_model(self, request: HttpRequest, obj: McpServer, form: Any, change: bool) -> None:
        secret = form.cleaned_data.get("auth_secret_input") or None
        try:
            saved = self._save(request, obj, form, change, secret)
        except services.VersionConflict:
            self.message_user(
                request, "Not saved: changed by someone else meanwhile.", messages.ERROR
            )
            return
        except PermissionDenied as exc:
            self.message_user(request, f"Not saved: {exc}", messages.ERROR)
            return
        obj.pk, obj.version = saved.pk, saved.version
        self.check_after_save(request, saved)

    def _save(
        self, request: HttpRequest, obj: McpServer, form: Any, change: bool, secret: str | None
    ) -> McpServer:
        if not change:
            fields = services.server_authorize_create(
                user=request.user, fields=form.new_server_fields()
            )
            return services.server_register(actor=request.user, auth_secret=secret, **fields)
        server, changes = McpServer.objects.get(pk=obj.pk), form.service_changes()
        services.server_authorize_change(user=request.user, server=server, changes=changes)
        return services.server_update(
            actor=request.user, server=server, changes=changes,
            expected_version=form.cleaned_data.get("expected_version"),
            **({"auth_secret": secret} if secret else {}),
        )  # fmt: skip

    def delete_model(self, request: HttpRequest, obj: McpServer) -> None:
        services.server_delete(actor=request.user, server=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[McpServer]) -> None:
        for server in queryset:
            services.server_delete(actor=request.user, server=server)

    @admin.action(description="Enable selected servers", permissions=["change"])
    def enable_servers(self, request: HttpRequest, queryset: QuerySet[McpServer]) -> None:
        for server in queryset:
            services.server_set_enabled(actor=request.user, server=server, enabled=True)
        self.message_user(request, f"Enabled {queryset.count()} server(s).")

    @admin.action(description="Disable selected servers", permissions=["change"])
    def disable_servers(self, request: HttpRequest, queryset: QuerySet[McpServer]) -> None:
        for server in queryset:
            services.server_set_enabled(actor=request.user, server=server, enabled=False)
        self.message_user(request, f"Disabled {queryset.count()} server(s).")


def _names(value: object) -> str:
    if not isinstance(value, dict):
        return UNREADABLE_MESSAGE if value is not None else "—"
    return ", ".join(value) or "—"
