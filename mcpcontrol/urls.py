from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from mcpcontrol import health, metrics
from mcpcontrol.console import dashboard
from mcpcontrol.lib.loginguard import ThrottledAdminAuthenticationForm, admin_login

# The admin's login counts failures and refuses a locked client or username (429).
admin.site.login_form = ThrottledAdminAuthenticationForm

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/login/", admin_login),  # before the admin's own admin/login/
    # The console opens on the dashboard; the admin's own model index moves one click away.
    path("admin/", admin.site.admin_view(dashboard.index), name="dashboard"),
    path("admin/models/", admin.site.admin_view(admin.site.index), name="admin_models"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("mcpcontrol.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("", include("credentials.urls")),
    # Served ahead of the middleware stack by health.OpsEndpointsMiddleware (see there).
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),
]

# JSON error bodies for /api/ paths, Django's pages elsewhere.
handler400 = "mcpcontrol.api.errors.handler400"
handler404 = "mcpcontrol.api.errors.handler404"
handler500 = "mcpcontrol.api.errors.handler500"
