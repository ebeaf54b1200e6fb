"""URLs for the browser test: an admin site whose McpServer admin has the OAuth mixin wired
the way the real one should be (the real servers/admin.py is built elsewhere)."""

from django.contrib import admin
from django.urls import include, path

from servers.admin_oauth import OAuthAdminMixin
from servers.models import McpServer

site = admin.AdminSite(name="admin")


class ServerAdmin(OAuthAdminMixin, admin.ModelAdmin):
    actions = ["oauth_discover_action"]
    fields = ("name", "url", "oauth_connect_button")
    readonly_fields = ("oauth_connect_button",)


site.register(McpServer, ServerAdmin)

urlpatterns = [
    path("admin/", site.urls),
    path("", include("tokens.urls")),
]
