"""Machine-to-machine servers: the client credentials grant with a pre-registered client."""

from datetime import timedelta

import pytest
from django.utils import timezone

from credentials import services
from credentials.models import Grant
from credentials.tests.conftest import credential_headers, list_tool_names, shared_grant
from servers.models import McpServer


def _pre_registered(server: McpServer, client_id: str, secret: str, **oauth: str) -> McpServer:
    server.oauth = {**server.oauth, "client_id": client_id,
                    "token_endpoint_auth_method": "client_secret_basic", **oauth}  # fmt: skip
    server.oauth_client_secret = secret
    server.save()
    return server


@pytest.fixture
def machine_server(oauth_server, peers) -> McpServer:
    client_id, secret = peers.provider.add_client(grant_types=["client_credentials"])
    return _pre_registered(oauth_server, client_id, secret, grant_type="client_credentials")


@pytest.mark.django_db
def test_it_fetches_a_token_with_a_pre_registered_client(machine_server, peers):
    services.oauth_client_credentials_fetch(server=machine_server)

    assert shared_grant(machine_server).refresh_secret is None
    assert not peers.provider.token_calls["authorization_code"]
    assert list_tool_names(machine_server.url, credential_headers(server=machine_server)) == [
        "echo"
    ]


@pytest.mark.django_db
def test_it_renews_a_machine_token_without_a_refresh_token(machine_server, peers):
    grant = services.oauth_client_credentials_fetch(server=machine_server)
    Grant.objects.filter(pk=grant.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert services.grants_refresh(grant_ids=[grant.pk], budget=15) == {grant.pk: "refreshed"}

    assert shared_grant(machine_server).expires_at > timezone.now()
    assert peers.provider.token_calls["client_credentials"] == 2
    assert list_tool_names(machine_server.url, credential_headers(server=machine_server)) == [
        "echo"
    ]


@pytest.mark.django_db
def test_it_keeps_a_pre_registered_client_instead_of_registering(oauth_server, admin_user, peers):
    client_id, secret = peers.provider.add_client(
        grant_types=["authorization_code", "refresh_token"],
        redirect_uri="http://127.0.0.1:8000/oauth/callback",
    )
    _pre_registered(oauth_server, client_id, secret)

    services.oauth_authorization_start(server=oauth_server, user=admin_user)

    assert set(peers.provider.clients) == {client_id}
    assert McpServer.objects.get(pk=oauth_server.pk).oauth_config.client_id == client_id


@pytest.mark.django_db
def test_it_fetches_the_first_machine_token_on_first_use(machine_server):
    headers = credential_headers(server=machine_server)

    assert list_tool_names(machine_server.url, headers) == ["echo"]
    assert shared_grant(machine_server) is not None
