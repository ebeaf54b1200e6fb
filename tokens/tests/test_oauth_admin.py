"""The admin's "Discover OAuth" action and the Connect view in the real server admin."""

import pytest
from django.test import Client

from servers.models import McpServer


def _admin_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_it_discovers_oauth_from_the_admin_action(oauth_server, admin_user, peers):
    response = _admin_client(admin_user).post(
        "/admin/servers/mcpserver/",
        {"action": "oauth_discover_action", "_selected_action": [oauth_server.pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert f"authorization server {peers.issuer}" in response.content.decode()
    assert McpServer.objects.get(pk=oauth_server.pk).oauth_token_url == f"{peers.issuer}/token"


@pytest.mark.django_db
def test_it_reports_a_failed_discovery_in_the_admin(admin_user, db):
    server = McpServer.objects.create(
        name="Gone", alias="gone", url="http://127.0.0.1:9/mcp", auth_type=McpServer.AuthType.OAUTH
    )

    response = _admin_client(admin_user).post(
        "/admin/servers/mcpserver/",
        {"action": "oauth_discover_action", "_selected_action": [server.pk]},
        follow=True,
    )

    assert "Gone: unreachable" in response.content.decode()


@pytest.mark.django_db
def test_it_redirects_connect_to_the_authorization_server(oauth_server, admin_user, peers):
    response = _admin_client(admin_user).get(
        f"/admin/servers/mcpserver/{oauth_server.pk}/oauth/connect/"
    )

    assert response.status_code == 302
    assert response["Location"].startswith(f"{peers.issuer}/authorize?")
