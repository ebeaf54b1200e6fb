"""/api/v1/: every app's API, mounted without trailing slashes (the composition root)."""

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from audit.api.views import AuditEventViewSet
from mcpcontrol.api.auth import ScopedTokenObtainPairView, ScopedTokenRefreshView
from mcpcontrol.api.stats import AdminStatsView
from servers.api.admin import AdminMcpServerViewSet
from servers.api.agents import AgentViewSet
from servers.api.views import McpServerViewSet
from tokens.api.views import TokenViewSet

router = SimpleRouter(trailing_slash=False)
router.register("servers", McpServerViewSet, basename="server")
router.register("agents", AgentViewSet, basename="agent")
router.register("tokens", TokenViewSet, basename="token")
router.register("admin/servers", AdminMcpServerViewSet, basename="admin-server")
router.register("admin/audit", AuditEventViewSet, basename="admin-audit")

app_name = "api"
urlpatterns = [
    path("auth/token", ScopedTokenObtainPairView.as_view(), name="token-obtain"),
    path("auth/token/refresh", ScopedTokenRefreshView.as_view(), name="token-refresh"),
    # Before the router: "stats" would otherwise be read as a server id and 404.
    path("admin/servers/stats", AdminStatsView.as_view(), name="admin-server-stats"),
    path("", include("credentials.api.urls")),
    path("", include("gateway.api.urls")),
    path("", include(router.urls)),
]
