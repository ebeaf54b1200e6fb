from django.urls import path

from tokens.api import oauth_views

urlpatterns = [
    path(
        "servers/<int:pk>/oauth/discover",
        oauth_views.OAuthDiscoverView.as_view(),
        name="server-oauth-discover",
    ),
    path(
        "servers/<int:pk>/oauth/start",
        oauth_views.OAuthStartView.as_view(),
        name="server-oauth-start",
    ),
    path(
        "servers/<int:pk>/oauth/disconnect",
        oauth_views.OAuthDisconnectView.as_view(),
        name="server-oauth-disconnect",
    ),
]
