"""The whole connect flow against a real authorization server and MCP server."""

from datetime import timedelta

import httpx
import pytest
import time_machine
from django.db import connection as db_connection
from django.utils import timezone

from audit.models import AuditEvent
from servers.credentials import credential_headers
from servers.models import McpServer
from credentials import tasks
from tokens.models import Token
from credentials.tests.conftest import connect, list_tool_names


@pytest.mark.django_db
def test_it_connects_discovers_registers_refreshes_and_keeps_working(
    oauth_server, admin_user, peers, celery_eager
):
    response = connect(server=oauth_server, user=admin_user)

    assert response.status_code == 200, response.content
    server = McpServer.objects.get(pk=oauth_server.pk)
    assert server.oauth_issuer.startswith(peers.issuer)
    assert server.oauth_client_id is not None  # registered dynamically (RFC 7591)
    assert server.oauth_client_id.reveal() in peers.provider.clients
    first_refresh = server.oauth_refresh_token.reveal()
    assert first_refresh in peers.provider.refresh
    assert list_tool_names(server.url, credential_headers(server=server)) == ["echo"]

    with time_machine.travel(timezone.now() + timedelta(hours=1, minutes=1), tick=True):
        stale = {"Authorization": f"Bearer {server.oauth_access_token.reveal()}"}
        assert httpx.post(server.url, json={}, headers=stale).status_code == 401  # expired

        assert tasks.oauth_tokens_refresh_due.delay().get() == 1

        renewed = McpServer.objects.get(pk=server.pk)
        assert renewed.oauth_expires_at > timezone.now()
        assert list_tool_names(renewed.url, credential_headers(server=renewed)) == ["echo"]
    assert renewed.oauth_refresh_token.reveal() != first_refresh
    assert renewed.oauth_refresh_token.reveal() in peers.provider.refresh
    assert peers.provider.token_calls["refresh_token"] == 1


@pytest.mark.django_db
def test_it_stores_tokens_encrypted_and_mirrors_them_to_token_rows(oauth_server, admin_user):
    connect(server=oauth_server, user=admin_user)

    server = McpServer.objects.get(pk=oauth_server.pk)
    access = server.oauth_access_token.reveal()
    with db_connection.cursor() as cursor:
        cursor.execute(
            "SELECT oauth_access_token FROM servers_mcpserver WHERE id = %s", [server.pk]
        )
        (stored,) = cursor.fetchone()
    assert access not in stored
    rows = {t.type: t for t in Token.objects.filter(user=admin_user)}
    assert rows[Token.Type.OAUTH_ACCESS].token.reveal() == access
    assert (
        rows[Token.Type.OAUTH_ACCESS].metadata["paired_token_id"]
        == rows[Token.Type.OAUTH_REFRESH].id
    )
    assert rows[Token.Type.OAUTH_REFRESH].metadata["server_id"] == server.pk


@pytest.mark.django_db
def test_it_audits_the_stored_token_without_the_secret(oauth_server, admin_user):
    connect(server=oauth_server, user=admin_user)

    server = McpServer.objects.get(pk=oauth_server.pk)
    event = AuditEvent.objects.get(action=AuditEvent.Action.TOKEN_STORED)
    assert event.actor == admin_user
    assert server.oauth_access_token.reveal() not in str(event.changes)
    assert server.oauth_refresh_token.reveal() not in str(event.changes)
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {AuditEvent.Action.OAUTH_DISCOVERED, AuditEvent.Action.OAUTH_REGISTERED} <= actions


@pytest.mark.django_db
def test_it_sends_the_resource_parameter_so_the_token_is_bound_to_the_server(
    oauth_server, admin_user, peers
):
    connect(server=oauth_server, user=admin_user)

    server = McpServer.objects.get(pk=oauth_server.pk)
    issued = peers.provider.access[server.oauth_access_token.reveal()]
    assert issued.resource == peers.mcp_url
