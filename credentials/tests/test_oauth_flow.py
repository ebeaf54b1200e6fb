"""The whole connect flow against a real authorization server and MCP server."""

from datetime import timedelta

import httpx
import pytest
import time_machine
from django.db import connection as db_connection
from django.utils import timezone

from audit.models import AuditEvent
from credentials import tasks
from credentials.tests.conftest import connect, credential_headers, list_tool_names, shared_grant
from servers.models import McpServer
from tokens.models import Token


@pytest.mark.django_db
def test_it_connects_discovers_registers_refreshes_and_keeps_working(
    oauth_server, admin_user, peers, celery_eager
):
    response = connect(server=oauth_server, user=admin_user)

    assert response.status_code == 200, response.content
    server = McpServer.objects.get(pk=oauth_server.pk)
    assert server.oauth_config.issuer.startswith(peers.issuer)
    assert server.oauth_config.client_id in peers.provider.clients  # registered (RFC 7591)
    grant = shared_grant(server)
    first_refresh = grant.refresh_secret.reveal()
    assert first_refresh in peers.provider.refresh
    assert list_tool_names(server.url, credential_headers(server=server)) == ["echo"]

    with time_machine.travel(timezone.now() + timedelta(hours=1, minutes=1), tick=True):
        stale = {"Authorization": f"Bearer {grant.secret.reveal()}"}
        assert httpx.post(server.url, json={}, headers=stale).status_code == 401  # expired

        assert tasks.grant_refresh_due.delay().get() == 1

        renewed = shared_grant(server)
        assert renewed.expires_at > timezone.now()
        assert list_tool_names(server.url, credential_headers(server=server)) == ["echo"]
    assert renewed.refresh_secret.reveal() != first_refresh
    assert renewed.refresh_secret.reveal() in peers.provider.refresh
    assert peers.provider.token_calls["refresh_token"] == 1


@pytest.mark.sql_only("reads the stored column with raw SQL (connection.cursor)")
@pytest.mark.django_db
def test_it_stores_the_grant_encrypted_in_one_place(oauth_server, admin_user):
    connect(server=oauth_server, user=admin_user)

    grant = shared_grant(oauth_server)
    access = grant.secret.reveal()
    with db_connection.cursor() as cursor:
        cursor.execute("SELECT secret, refresh_secret FROM credentials_grant WHERE id = %s",
                       [grant.pk])  # fmt: skip
        stored = " ".join(cursor.fetchone())
    assert access not in stored
    assert grant.refresh_secret.reveal() not in stored
    assert grant.granted_by == admin_user  # the consent was theirs
    assert not Token.objects.exists()  # no copy of the secret anywhere else


@pytest.mark.django_db
def test_it_audits_the_stored_grant_without_the_secret(oauth_server, admin_user):
    connect(server=oauth_server, user=admin_user)

    grant = shared_grant(oauth_server)
    event = AuditEvent.objects.get(action=AuditEvent.Action.CREATE, entity_type="grant")
    assert event.actor == admin_user
    assert grant.secret.reveal() not in str(event.changes)
    assert grant.refresh_secret.reveal() not in str(event.changes)
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {AuditEvent.Action.OAUTH_DISCOVERED, AuditEvent.Action.OAUTH_REGISTERED} <= actions


@pytest.mark.django_db
def test_it_sends_the_resource_parameter_so_the_token_is_bound_to_the_server(
    oauth_server, admin_user, peers
):
    connect(server=oauth_server, user=admin_user)

    issued = peers.provider.access[shared_grant(oauth_server).secret.reveal()]
    assert issued.resource == peers.mcp_url


@pytest.mark.django_db
def test_the_tokens_api_lists_and_reads_a_grant_without_copying_it(oauth_server, admin_user):
    from tests.api_fixtures import client_for

    connect(server=oauth_server, user=admin_user)
    grant = shared_grant(oauth_server)
    api = client_for(admin_user)

    listed = api.get("/api/v1/tokens").json()["tokens"]
    [entry] = [t for t in listed if t["id"] == f"grant-{grant.pk}"]
    read = api.get(f"/api/v1/tokens/grant-{grant.pk}")

    assert entry["type"] == "oauth_access" and entry["identifier"] == "mcp:protected"
    assert read.status_code == 200 and read.json()["token"] == grant.secret.reveal()
    assert AuditEvent.objects.filter(action="secret_read", entity_type="grant").count() == 1
    assert api.delete(f"/api/v1/tokens/grant-{grant.pk}").status_code == 409  # lives elsewhere
    assert shared_grant(oauth_server) is not None
    assert not Token.objects.exists()
