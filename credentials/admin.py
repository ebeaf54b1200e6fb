"""The console's OAuth pieces and the grants list.

The server admin belongs to the servers app, which knows nothing of OAuth flows; this app
depends on servers, so it extends that admin (re-registering McpServer with the subclass
below): the "Discover OAuth" action and the Connect and Disconnect buttons on a server page.
Grants are listed read-only: no secret is ever shown, only kind, expiry and state.
"""

from typing import TYPE_CHECKING

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.views.decorators.http import require_POST

from credentials import services
from credentials.models import Grant
from credentials.oauth import OAuthError
from mcpcontrol.lib import ids  # noqa: F401  (registers the <id:...> converter)
from mcpcontrol.lib.urlguard import BlockedUrl
from servers.admin import McpServerAdmin
from servers.models import McpServer

if TYPE_CHECKING:
    _GrantAdmin = admin.ModelAdmin[Grant]
else:
    _GrantAdmin = admin.ModelAdmin


class OAuthServerAdmin(McpServerAdmin):
    """The server admin with the OAuth action, buttons and views."""

    oauth_extra_fields = ("oauth_connect_button",)
    actions = (*McpServerAdmin.actions, "oauth_discover_action")  # type: ignore[assignment]

    def get_readonly_fields(
        self, request: HttpRequest, obj: McpServer | None = None
    ) -> tuple[str, ...]:
        return (*super().get_readonly_fields(request, obj), "oauth_connect_button")

    def get_urls(self) -> list[URLPattern]:
        extra = [
            path(
                "<id:object_id>/oauth/connect/",
                self.admin_site.admin_view(self.oauth_connect_view),
                name="servers_mcpserver_oauth_connect",
            ),
            path(
                "<id:object_id>/oauth/disconnect/",
                self.admin_site.admin_view(require_POST(self.oauth_disconnect_view)),
                name="servers_mcpserver_oauth_disconnect",
            ),
        ]
        return extra + super().get_urls()

    @admin.action(description="Discover OAuth", permissions=["change"])
    def oauth_discover_action(self, request: HttpRequest, queryset: QuerySet[McpServer]) -> None:
        for server in queryset.filter(auth_type=McpServer.AuthType.OAUTH):
            try:
                server = services.oauth_discover(server=server, actor=request.user)
            except (OAuthError, BlockedUrl) as exc:
                self.message_user(request, f"{server.name}: {exc}", messages.ERROR)
            else:
                text = f"{server.name}: authorization server {server.oauth_config.issuer}"
                self.message_user(request, text, messages.SUCCESS)

    @admin.display(description="OAuth connection")
    def oauth_connect_button(self, obj: McpServer | None) -> str:
        shared = obj is not None and obj.credential_mode == McpServer.CredentialMode.SHARED
        if obj is None or obj.pk is None or obj.auth_type != McpServer.AuthType.OAUTH or not shared:
            return "-"
        if obj.oauth_config.machine:
            return "Client credentials: tokens are fetched automatically."
        grant = Grant.objects.filter(server=obj, agent__isnull=True).first()
        url = reverse("admin:servers_mcpserver_oauth_connect", args=[obj.pk])
        state = "needs re-authorization" if grant is not None and grant.needs_reauth else ""
        return format_html(
            '<a class="button" id="oauth-connect" href="{}">{}</a> {} {}',
            url,
            "Reconnect" if grant is not None else "Connect",
            self._oauth_disconnect_button(obj, grant),
            state,
        )

    def _oauth_disconnect_button(self, obj: McpServer, grant: Grant | None) -> SafeString | str:
        if grant is None:
            return ""
        url = reverse("admin:servers_mcpserver_oauth_disconnect", args=[obj.pk])
        # This renders inside the change form, and forms cannot nest: formaction makes the
        # button POST that form, CSRF token included, to the disconnect view instead.
        return format_html(
            '<button type="submit" class="button" id="oauth-disconnect" formaction="{}" '
            'formmethod="post" formnovalidate>Disconnect</button>',
            url,
        )

    def _changeable(self, request: HttpRequest, object_id: int) -> tuple[McpServer, str]:
        """The server (404 unless visible, 403 unless changeable) and its change page URL."""
        server = get_object_or_404(self.get_queryset(request), pk=object_id)
        if not self.has_change_permission(request, server):
            raise PermissionDenied
        return server, reverse("admin:servers_mcpserver_change", args=[server.pk])

    def oauth_connect_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """Start the shared-mode flow and send the browser to the authorization server."""
        server, change_url = self._changeable(request, object_id)
        try:
            url = services.oauth_authorization_start(
                server=server, user=request.user, return_url=change_url
            )
        except (OAuthError, BlockedUrl) as exc:
            self.message_user(request, f"Cannot connect {server.name}: {exc}", messages.ERROR)
            return HttpResponseRedirect(change_url)
        return HttpResponseRedirect(url)

    def oauth_disconnect_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """Drop the shared grant (revoked upstream, audited) and say so on the change page."""
        server, change_url = self._changeable(request, object_id)
        try:
            revoked = services.oauth_disconnect(server=server, actor=request.user)
        except OAuthError as exc:
            self.message_user(request, f"Cannot disconnect {server.name}: {exc}", messages.ERROR)
            return HttpResponseRedirect(change_url)
        text = f"Disconnected {server.name}."
        if not revoked:
            text += " The authorization server could not be told; the grant is deleted here."
        self.message_user(request, text, messages.SUCCESS if revoked else messages.WARNING)
        return HttpResponseRedirect(change_url)


admin.site.unregister(McpServer)
admin.site.register(McpServer, OAuthServerAdmin)


@admin.register(Grant)
class GrantAdmin(_GrantAdmin):
    """Every stored upstream credential, without its value: kind, expiry, state."""

    list_display = ("server", "agent", "kind", "expires_at", "needs_reauth", "granted_by",
                    "updated_at")  # fmt: skip
    list_filter = ("kind", "needs_reauth")
    search_fields = ("server__name", "agent__name", "granted_by__username")
    list_select_related = ("server", "agent", "granted_by")
    fields = ("server", "agent", "kind", "scope", "expires_at", "needs_reauth", "reauth_reason",
              "refresh_failures", "refresh_not_before", "granted_by", "created_at", "updated_at")  # fmt: skip
    readonly_fields = fields
    actions = ("refresh_now",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Grant]:
        # A grant is visible with its server.
        return Grant.objects.filter(server__in=McpServer.objects.for_user(request.user))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # grants come from a server's credential input or a connect flow

    def delete_model(self, request: HttpRequest, obj: Grant) -> None:
        services.grants_forget(server=obj.server, agent=obj.agent, actor=request.user,
                               only_agent=True)  # fmt: skip

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Grant]) -> None:
        for grant in queryset.select_related("server", "agent"):
            self.delete_model(request, grant)

    @admin.action(description="Refresh selected OAuth grants now", permissions=["change"])
    def refresh_now(self, request: HttpRequest, queryset: QuerySet[Grant]) -> None:
        outcomes = services.grants_refresh(
            grant_ids=list(queryset.values_list("id", flat=True)), budget=10.0
        )
        done = sum(1 for outcome in outcomes.values() if outcome == "refreshed")
        self.message_user(request, f"Refreshed {done} of {queryset.count()} grant(s).")
