"""POST /api/v1/servers/{id}/oauth/disconnect: drop a grant without deleting the server."""

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from audit.models import AuditEvent
from credentials.models import Grant
from credentials.tests.conftest import connect, shared_grant
from servers.models import Agent, AgentConnection, McpServer
from tests.gaps import PERMISSION_JOIN


def _disconnect(user: User, server: McpServer, body: dict[str, int] | None = None):
    client = APIClient()
    client.force_authenticate(user)
    return client.post(f"/api/v1/servers/{server.pk}/oauth/disconnect", body or {}, format="json")


@pytest.mark.django_db
@PERMISSION_JOIN
def test_it_revokes_and_clears_the_shared_grant(oauth_server, operator, peers):
    connect(server=oauth_server, user=operator)
    grant = shared_grant(oauth_server)
    refresh, access = grant.refresh_secret.reveal(), grant.secret.reveal()

    response = _disconnect(operator, oauth_server)

    assert response.status_code == 200, response.content
    assert response.json() == {"status": "disconnected", "revoked": True}
    assert refresh in peers.provider.revoked
    assert access not in peers.provider.access
    assert not Grant.objects.exists()


@pytest.mark.django_db
@PERMISSION_JOIN
def test_it_audits_the_disconnect_as_the_caller(oauth_server, operator):
    connect(server=oauth_server, user=operator)

    _disconnect(operator, oauth_server)

    events = AuditEvent.objects.filter(entity_type="grant")
    revoked = events.get(action=AuditEvent.Action.REVOKE)
    deleted = events.get(action=AuditEvent.Action.DELETE)
    assert revoked.actor == deleted.actor == operator
    assert deleted.changes["revoked"] is True


@pytest.mark.django_db
@PERMISSION_JOIN
def test_it_drops_one_agents_grant_for_its_owner(oauth_server, peers):
    McpServer.objects.filter(pk=oauth_server.pk).update(
        credential_mode=McpServer.CredentialMode.PER_AGENT
    )
    server = McpServer.objects.get(pk=oauth_server.pk)
    owner = User.objects.create_user("owner", password="pw-owner-12345")  # no change permission
    agent = Agent.objects.create(name="mine", owner=owner)
    connect(server=server, user=owner, agent=agent)
    refresh = Grant.objects.get(agent=agent).refresh_secret.reveal()

    response = _disconnect(owner, server, {"agent_id": agent.pk})

    assert response.status_code == 200, response.content
    assert refresh in peers.provider.revoked
    assert not Grant.objects.exists()
    assert not AgentConnection.objects.filter(agent=agent).exists()


@pytest.mark.django_db
def test_it_hides_another_users_server_on_disconnect(operator, peers):
    other = User.objects.create_user("other", password="pw-other-12345")
    server = McpServer.objects.create(
        name="Private", path="/private", url=peers.mcp_url, auth_type=McpServer.AuthType.OAUTH,
        scope=McpServer.Scope.PRIVATE_USER, owner=other,
    )  # fmt: skip

    response = _disconnect(operator, server)

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


@pytest.mark.django_db
def test_it_forbids_dropping_the_shared_grant_without_change_permission(oauth_server, operator):
    connect(server=oauth_server, user=operator)
    reader = User.objects.create_user("reader", password="pw-reader-12345")

    response = _disconnect(reader, oauth_server)

    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"  # the API's one vocabulary
    assert shared_grant(oauth_server) is not None


@pytest.mark.django_db
@PERMISSION_JOIN
def test_it_says_when_there_is_nothing_to_disconnect(oauth_server, operator, peers):
    response = _disconnect(operator, oauth_server)

    assert response.status_code == 409
    assert response.json() == {
        "error": "not_connected",
        "message": "Protected has no OAuth grant to drop.",
    }
    assert not AuditEvent.objects.exists()
    assert not peers.provider.revoked


@pytest.mark.django_db
@PERMISSION_JOIN
def test_it_refuses_an_agent_for_a_shared_server(oauth_server, operator):
    agent = Agent.objects.create(name="mine", owner=operator)

    response = _disconnect(operator, oauth_server, {"agent_id": agent.pk})

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
