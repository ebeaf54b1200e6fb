"""/api/v1/ routes of the credentials app: OAuth connections and variable values."""

from django.urls import path

from credentials.api import oauth, variables
from mcpcontrol.lib import ids  # noqa: F401  (registers the <id:...> converter)

urlpatterns = [
    path("servers/<id:pk>/oauth/discover", oauth.OAuthDiscoverView.as_view(),
         name="server-oauth-discover"),
    path("servers/<id:pk>/oauth/start", oauth.OAuthStartView.as_view(),
         name="server-oauth-start"),
    path("servers/<id:pk>/oauth/disconnect", oauth.OAuthDisconnectView.as_view(),
         name="server-oauth-disconnect"),
    path("servers/<id:pk>/variables", variables.UserVariablesView.as_view(),
         name="server-variables"),
    path("agents/<id:agent_id>/variables/<id:server_id>", variables.AgentVariablesView.as_view(),
         name="agent-variables"),
]  # fmt: skip
