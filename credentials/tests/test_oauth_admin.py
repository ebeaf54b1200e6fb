"""The admin's "Discover OAuth" action and the Connect and Disconnect views in the real
server admin."""

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from audit.models import AuditEvent
from credentials.tests.conftest import connect, shared_grant
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
    assert (
        McpServer.objects.get(pk=oauth_server.pk).oauth_config.token_url == f"{peers.issuer}/token"
    )


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


@pytest.mark.django_db
def test_it_offers_disconnect_only_for_a_connected_server(oauth_server, admin_user):
    change = f"/admin/servers/mcpserver/{oauth_server.pk}/change/"
    before = _admin_client(admin_user).get(change).content.decode()
    connect(server=oauth_server, user=admin_user)

    after = _admin_client(admin_user).get(change).content.decode()

    assert 'id="oauth-disconnect"' not in before
    disconnect = f"/admin/servers/mcpserver/{oauth_server.pk}/oauth/disconnect/"
    assert f'id="oauth-disconnect" formaction="{disconnect}" formmethod="post"' in after


@pytest.mark.django_db
def test_it_disconnects_from_the_admin_and_says_so(oauth_server, admin_user, peers):
    connect(server=oauth_server, user=admin_user)
    refresh = shared_grant(oauth_server).refresh_secret.reveal()

    response = _admin_client(admin_user).post(
        f"/admin/servers/mcpserver/{oauth_server.pk}/oauth/disconnect/", follow=True
    )

    assert response.redirect_chain[-1][0] == f"/admin/servers/mcpserver/{oauth_server.pk}/change/"
    assert "Disconnected Protected." in response.content.decode()
    assert refresh in peers.provider.revoked
    assert shared_grant(oauth_server) is None
    assert (
        AuditEvent.objects.filter(action=AuditEvent.Action.DELETE, entity_type="grant").count() == 1
    )


@pytest.mark.django_db
def test_it_reports_an_admin_disconnect_with_nothing_connected(oauth_server, admin_user):
    response = _admin_client(admin_user).post(
        f"/admin/servers/mcpserver/{oauth_server.pk}/oauth/disconnect/", follow=True
    )

    assert "Cannot disconnect Protected: not_connected" in response.content.decode()


@pytest.mark.django_db
def test_the_admin_disconnect_needs_a_post_with_a_csrf_token(oauth_server, admin_user):
    connect(server=oauth_server, user=admin_user)
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    url = f"/admin/servers/mcpserver/{oauth_server.pk}/oauth/disconnect/"

    assert client.get(url).status_code == 405
    assert client.post(url).status_code == 403
    assert shared_grant(oauth_server) is not None


@pytest.mark.django_db
def test_the_admin_disconnect_needs_change_permission(oauth_server, admin_user):
    connect(server=oauth_server, user=admin_user)
    viewer = User.objects.create_user("viewer", password="pw-viewer-12345", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_mcpserver"))

    response = _admin_client(viewer).post(
        f"/admin/servers/mcpserver/{oauth_server.pk}/oauth/disconnect/"
    )

    assert response.status_code == 403
    assert shared_grant(oauth_server) is not None
