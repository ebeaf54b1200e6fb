from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from mcpcontrol import health, metrics

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/v1/", include("mcpcontrol.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("api/v1/", include("tokens.api.oauth_urls")),
    path("", include("tokens.urls")),
    # Served ahead of the middleware stack by health.OpsEndpointsMiddleware (see there).
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),
]

# JSON error bodies for /api/ paths, Django's pages elsewhere.
handler400 = "mcpcontrol.api.errors.handler400"
handler404 = "mcpcontrol.api.errors.handler404"
handler500 = "mcpcontrol.api.errors.handler500"
