from django.contrib.auth.views import LogoutView
from django.urls import path

from credentials import views
from credentials.views import me
from mcpcontrol.lib import ids  # noqa: F401  (registers the <id:...> converter)

urlpatterns = [
    path("oauth/callback", views.oauth_callback, name="oauth-callback"),
    # The user's own page (/me/), with Django's login: not the admin, so non-staff users
    # can finish connecting their agents.
    path("accounts/login/", me.UserLoginView.as_view(), name="login"),
    path("accounts/logout/", LogoutView.as_view(next_page="/accounts/login/"), name="logout"),
    path("me/", me.me_index, name="me"),
    path("me/agents/<id:agent_id>/", me.me_agent, name="me-agent"),
    path(
        "me/agents/<id:agent_id>/config/download/",
        me.me_config_download,
        name="me-config-download",
    ),
    path(
        "me/agents/<id:agent_id>/servers/<id:server_id>/connect/",
        me.me_connect,
        name="me-connect",
    ),
    path(
        "me/agents/<id:agent_id>/servers/<id:server_id>/disconnect/",
        me.me_disconnect,
        name="me-disconnect",
    ),
    path(
        "me/agents/<id:agent_id>/servers/<id:server_id>/variables/",
        me.me_variables,
        name="me-variables",
    ),
    path(
        "me/agents/<id:agent_id>/servers/<id:server_id>/key/",
        me.me_key,
        name="me-key",
    ),
    path("me/agents/<id:agent_id>/keys/", me.me_agent_key_create, name="me-agent-key-create"),
    path(
        "me/agents/<id:agent_id>/keys/<id:key_id>/revoke/",
        me.me_agent_key_revoke,
        name="me-agent-key-revoke",
    ),
]
