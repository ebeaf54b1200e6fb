"""POST /api/v1/servers/{id}/oauth/discover and /oauth/start."""

from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from servers.models import Agent, McpServer
from tests.gaps import PERMISSION_JOIN


def _api(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _private_server(owner: User, url: str) -> McpServer:
    return McpServer.objects.create(
        name="Private",
        alias="private",
        url=url,
        auth_type=McpServer.AuthType.OAUTH,
        scope=McpServer.Scope.PRIVATE_USER,
        owner=owner,
    )


@pytest.mark.django_db
@PERMISSION_JOIN
def test_it_discovers_the_authorization_server_from_the_401(oauth_server, operator, peers):
    response = _api(operator).post(f"/api/v1/servers/{oauth_server.pk}/oauth/discover")

    assert response.status_code == 200, response.content
    assert response.json()["token_url"] == f"{peers.issuer}/token"
    assert response.json()["code_challenge_methods_supported"] == ["S256"]  # seed 004 names
    server = McpServer.objects.get(pk=oauth_server.pk)
    assert server.oauth_config.registration_endpoint == f"{peers.issuer}/register"
    assert server.oauth_config.scope == "mcp"
    assert server.oauth_metadata["resource"] == peers.mcp_url


@pytest.mark.django_db
@PERMISSION_JOIN
def test_it_refuses_discovery_for_a_server_without_oauth(oauth_server, operator):
    McpServer.objects.filter(pk=oauth_server.pk).update(auth_type=McpServer.AuthType.BEARER)

    response = _api(operator).post(f"/api/v1/servers/{oauth_server.pk}/oauth/discover")

    assert response.status_code == 400
    assert response.json()["error"] == "not_oauth"


@pytest.mark.django_db
def test_it_hides_another_users_server_on_discover(operator, peers):
    other = User.objects.create_user("other", password="pw-other-12345")
    server = _private_server(other, peers.mcp_url)

    response = _api(operator).post(f"/api/v1/servers/{server.pk}/oauth/discover")

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


@pytest.mark.django_db
@PERMISSION_JOIN
def test_it_reports_an_unreachable_authorization_server_as_bad_gateway(operator, db):
    server = McpServer.objects.create(
        name="Gone", alias="gone", url="http://127.0.0.1:9/mcp", auth_type=McpServer.AuthType.OAUTH
    )

    response = _api(operator).post(f"/api/v1/servers/{server.pk}/oauth/discover")

    assert response.status_code == 502
    assert response.json()["error"] == "unreachable"


@pytest.mark.django_db
@PERMISSION_JOIN
def test_it_starts_a_shared_flow_and_returns_the_authorization_url(oauth_server, operator, peers):
    response = _api(operator).post(f"/api/v1/servers/{oauth_server.pk}/oauth/start")

    assert response.status_code == 201, response.content
    url = response.json()["authorization_url"]
    assert url.startswith(f"{peers.issuer}/authorize?")
    assert parse_qs(urlsplit(url).query)["state"]


@pytest.mark.django_db
@PERMISSION_JOIN
def test_it_requires_an_agent_for_a_per_agent_server(oauth_server, operator):
    McpServer.objects.filter(pk=oauth_server.pk).update(
        credential_mode=McpServer.CredentialMode.PER_AGENT
    )

    response = _api(operator).post(f"/api/v1/servers/{oauth_server.pk}/oauth/start")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


@pytest.mark.django_db
@PERMISSION_JOIN
def test_it_rejects_another_users_agent(oauth_server, operator):
    McpServer.objects.filter(pk=oauth_server.pk).update(
        credential_mode=McpServer.CredentialMode.PER_AGENT
    )
    agent = Agent.objects.create(
        name="theirs", owner=User.objects.create_user("x", password="pw-x-1234567")
    )

    response = _api(operator).post(
        f"/api/v1/servers/{oauth_server.pk}/oauth/start", {"agent_id": agent.pk}
    )

    assert response.status_code == 404


@pytest.mark.django_db
def test_it_hides_another_users_server_on_start(operator, peers):
    server = _private_server(
        User.objects.create_user("o2", password="pw-o2-1234567"), peers.mcp_url
    )

    response = _api(operator).post(f"/api/v1/servers/{server.pk}/oauth/start")

    assert response.status_code == 404


@pytest.mark.django_db
def test_it_forbids_a_shared_connect_without_change_permission(oauth_server, db):
    user = User.objects.create_user("reader", password="pw-reader-12345")

    response = _api(user).post(f"/api/v1/servers/{oauth_server.pk}/oauth/start")

    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
