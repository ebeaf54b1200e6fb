"""OAuth discovery action and the "Connect" and "Disconnect" buttons for the server admin.

Wire it by mixing OAuthAdminMixin into the McpServer ModelAdmin (before admin.ModelAdmin),
adding "oauth_discover_action" to `actions` and "oauth_connect_button" to `readonly_fields`
(and to the fieldsets, if the admin declares them). get_urls() adds the two views.
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

from mcpcontrol.lib.urlguard import BlockedUrl
from servers.models import McpServer
from tokens import services as token_services
from tokens.oauth import OAuthError

if TYPE_CHECKING:
    # Typed as the McpServer admin it is mixed into; a plain mixin at run time, where
    # Django's ModelAdmin is not subscriptable.
    _ServerAdmin = admin.ModelAdmin[McpServer]
else:
    _ServerAdmin = object


class OAuthAdminMixin(_ServerAdmin):
    """Admin actions call services only; see the module docstring for the wiring."""

    def get_urls(self) -> list[URLPattern]:
        extra = [
            path(
                "<int:object_id>/oauth/connect/",
                self.admin_site.admin_view(self.oauth_connect_view),
                name="servers_mcpserver_oauth_connect",
            ),
            path(
                "<int:object_id>/oauth/disconnect/",
                self.admin_site.admin_view(require_POST(self.oauth_disconnect_view)),
                name="servers_mcpserver_oauth_disconnect",
            ),
        ]
        return extra + super().get_urls()

    @admin.action(description="Discover OAuth", permissions=["change"])
    def oauth_discover_action(self, request: HttpRequest, queryset: QuerySet[McpServer]) -> None:
        for server in queryset.filter(auth_type=McpServer.AuthType.OAUTH):
            try:
                token_services.oauth_discover(server=server, actor=request.user)
            except (OAuthError, BlockedUrl) as exc:
                self.message_user(request, f"{server.name}: {exc}", messages.ERROR)
            else:
                text = f"{server.name}: authorization server {server.oauth_issuer}"
                self.message_user(request, text, messages.SUCCESS)

    @admin.display(description="OAuth connection")
    def oauth_connect_button(self, obj: McpServer | None) -> str:
        shared = obj is not None and obj.credential_mode == McpServer.CredentialMode.SHARED
        if obj is None or obj.pk is None or obj.auth_type != McpServer.AuthType.OAUTH or not shared:
            return "-"
        if obj.oauth_grant_type != McpServer.OAuthGrant.AUTHORIZATION_CODE:
            return "Client credentials: tokens are fetched automatically."
        url = reverse("admin:servers_mcpserver_oauth_connect", args=[obj.pk])
        label = "Reconnect" if obj.oauth_access_token is not None else "Connect"
        state = "needs re-authorization" if obj.oauth_needs_reauth else ""
        return format_html(
            '<a class="button" id="oauth-connect" href="{}">{}</a> {} {}',
            url,
            label,
            self._oauth_disconnect_button(obj),
            state,
        )

    def _oauth_disconnect_button(self, obj: McpServer) -> SafeString | str:
        if obj.oauth_access_token is None and obj.oauth_refresh_token is None:
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
            url = token_services.oauth_authorization_start(
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
            revoked = token_services.oauth_disconnect(server=server, actor=request.user)
        except OAuthError as exc:
            self.message_user(request, f"Cannot disconnect {server.name}: {exc}", messages.ERROR)
            return HttpResponseRedirect(change_url)
        text = f"Disconnected {server.name}."
        if not revoked:
            text += " The authorization server could not be told; the grant is deleted here."
        level = messages.SUCCESS if revoked else messages.WARNING
        self.message_user(request, text, level)
        return HttpResponseRedirect(change_url)
