"""/api/v1/ routes of the credentials app: OAuth connections and variable values."""

from django.urls import path

from credentials.api import oauth, variables

urlpatterns = [
    path("servers/<int:pk>/oauth/discover", oauth.OAuthDiscoverView.as_view(),
         name="server-oauth-discover"),
    path("servers/<int:pk>/oauth/start", oauth.OAuthStartView.as_view(),
         name="server-oauth-start"),
    path("servers/<int:pk>/oauth/disconnect", oauth.OAuthDisconnectView.as_view(),
         name="server-oauth-disconnect"),
    path("servers/<int:pk>/variables", variables.UserVariablesView.as_view(),
         name="server-variables"),
    path("agents/<int:agent_id>/variables/<int:server_id>", variables.AgentVariablesView.as_view(),
         name="agent-variables"),
]  # fmt: skip
