"""GET /oauth/callback: state checks and authorization server errors store nothing."""

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from credentials import services
from credentials.models import Grant
from credentials.tests.conftest import follow_authorization
from servers.models import McpServer


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _get(client: Client, path: str):
    return client.get(path, HTTP_ACCEPT="application/json")


def _nothing_stored(server: McpServer) -> bool:
    return not Grant.objects.filter(server=server).exists()


@pytest.mark.django_db
def test_it_rejects_an_unknown_state(oauth_server, admin_user):
    response = _get(_client(admin_user), "/oauth/callback?code=abc&state=forged")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_state"


@pytest.mark.django_db
def test_it_rejects_a_replayed_state(oauth_server, admin_user):
    callback = follow_authorization(
        services.oauth_authorization_start(server=oauth_server, user=admin_user)
    )
    client = _client(admin_user)
    assert _get(client, callback).status_code == 200

    replay = _get(client, callback)

    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_state"


@pytest.mark.django_db
def test_it_rejects_an_expired_state(oauth_server, admin_user, peers):
    callback = follow_authorization(
        services.oauth_authorization_start(server=oauth_server, user=admin_user)
    )

    with time_machine.travel(timezone.now() + timedelta(minutes=11)):
        response = _get(_client(admin_user), callback)

    assert response.json()["error"] == "invalid_state"
    assert _nothing_stored(oauth_server)


@pytest.mark.django_db
def test_it_rejects_a_state_started_by_another_user(oauth_server, admin_user):
    callback = follow_authorization(
        services.oauth_authorization_start(server=oauth_server, user=admin_user)
    )
    other = User.objects.create_user("mallory", password="pw-mallory-123")

    response = _get(_client(other), callback)

    assert response.json()["error"] == "invalid_state"
    assert _nothing_stored(oauth_server)


@pytest.mark.django_db
def test_it_requires_a_signed_in_user(oauth_server, admin_user):
    callback = follow_authorization(
        services.oauth_authorization_start(server=oauth_server, user=admin_user)
    )

    response = Client().get(callback, HTTP_ACCEPT="application/json")

    assert response.status_code == 401
    assert _nothing_stored(oauth_server)


@pytest.mark.django_db
def test_it_shows_a_clear_page_when_the_user_denies(oauth_server, admin_user, peers):
    peers.provider.deny_next = True
    callback = follow_authorization(
        services.oauth_authorization_start(server=oauth_server, user=admin_user)
    )

    response = _client(admin_user).get(callback)

    assert response.status_code == 400
    assert b"access_denied" in response.content
    assert b"The user said no" in response.content
    assert _nothing_stored(oauth_server)


@pytest.mark.django_db
def test_it_stores_nothing_when_the_code_exchange_fails(oauth_server, admin_user, peers):
    callback = follow_authorization(
        services.oauth_authorization_start(server=oauth_server, user=admin_user)
    )
    code = parse_qs(urlsplit(callback).query)["code"][0]
    peers.provider.codes.pop(code)  # the code was already redeemed (or expired) at the AS

    response = _get(_client(admin_user), callback)

    assert response.json()["error"] == "invalid_grant"
    assert _nothing_stored(oauth_server)


@pytest.mark.django_db
def test_it_sends_pkce_s256_and_the_resource_in_the_authorization_url(
    oauth_server, admin_user, peers
):
    url = services.oauth_authorization_start(server=oauth_server, user=admin_user)

    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) == 43
    assert query["resource"] == [peers.mcp_url]
    assert query["redirect_uri"] == ["http://127.0.0.1:8000/oauth/callback"]


@pytest.mark.django_db
def test_it_returns_to_the_admin_page_that_started_the_flow(oauth_server, admin_user):
    url = services.oauth_authorization_start(
        server=oauth_server,
        user=admin_user,
        return_url=f"/admin/servers/mcpserver/{oauth_server.pk}/change/",
    )

    response = _client(admin_user).get(follow_authorization(url))

    assert response.status_code == 302
    assert response["Location"] == f"/admin/servers/mcpserver/{oauth_server.pk}/change/"
