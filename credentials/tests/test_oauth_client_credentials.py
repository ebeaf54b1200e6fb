"""Machine-to-machine servers: the client credentials grant with a pre-registered client."""

from datetime import timedelta

import pytest
from django.utils import timezone

from servers.credentials import credential_headers
from servers.models import McpServer
from credentials import services
from credentials.tests.conftest import list_tool_names


@pytest.fixture
def machine_server(oauth_server, peers) -> McpServer:
    client_id, secret = peers.provider.add_client(grant_types=["client_credentials"])
    oauth_server.oauth_grant_type = McpServer.OAuthGrant.CLIENT_CREDENTIALS
    oauth_server.oauth_client_id = client_id
    oauth_server.oauth_client_secret = secret
    oauth_server.oauth_token_endpoint_auth_method = "client_secret_basic"
    oauth_server.save()
    return oauth_server


@pytest.mark.django_db
def test_it_fetches_a_token_with_a_pre_registered_client(machine_server, peers):
    services.oauth_client_credentials_fetch(server=machine_server)

    server = McpServer.objects.get(pk=machine_server.pk)
    assert server.oauth_refresh_token is None
    assert not peers.provider.token_calls["authorization_code"]
    assert list_tool_names(server.url, credential_headers(server=server)) == ["echo"]


@pytest.mark.django_db
def test_it_renews_a_machine_token_without_a_refresh_token(machine_server, peers):
    services.oauth_client_credentials_fetch(server=machine_server)
    McpServer.objects.filter(pk=machine_server.pk).update(
        oauth_expires_at=timezone.now() - timedelta(seconds=1)
    )

    assert services.oauth_token_refresh(server_id=machine_server.pk) is True

    server = McpServer.objects.get(pk=machine_server.pk)
    assert server.oauth_expires_at > timezone.now()
    assert peers.provider.token_calls["client_credentials"] == 2
    assert list_tool_names(server.url, credential_headers(server=server)) == ["echo"]


@pytest.mark.django_db
def test_it_keeps_a_pre_registered_client_instead_of_registering(oauth_server, admin_user, peers):
    client_id, secret = peers.provider.add_client(
        grant_types=["authorization_code", "refresh_token"],
        redirect_uri="http://127.0.0.1:8000/oauth/callback",
    )
    oauth_server.oauth_client_id = client_id
    oauth_server.oauth_client_secret = secret
    oauth_server.oauth_token_endpoint_auth_method = "client_secret_basic"
    oauth_server.save()

    services.oauth_authorization_start(server=oauth_server, user=admin_user)

    assert set(peers.provider.clients) == {client_id}
    assert McpServer.objects.get(pk=oauth_server.pk).oauth_client_id.reveal() == client_id


@pytest.mark.django_db
def test_it_fetches_the_first_machine_token_on_first_use(machine_server):
    headers = credential_headers(server=machine_server)

    assert list_tool_names(machine_server.url, headers) == ["echo"]
    assert McpServer.objects.get(pk=machine_server.pk).oauth_access_token is not None
