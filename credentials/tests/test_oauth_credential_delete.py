"""Deleting a grant revokes it upstream (RFC 7009); expired Token rows are cleaned up."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from servers.models import McpServer
from credentials import services, tasks
from tokens.models import Token
from credentials.tests.conftest import connect


@pytest.mark.django_db
def test_it_revokes_the_grant_at_the_authorization_server(oauth_server, admin_user, peers):
    connect(server=oauth_server, user=admin_user)
    server = McpServer.objects.get(pk=oauth_server.pk)
    refresh, access = server.oauth_refresh_token.reveal(), server.oauth_access_token.reveal()

    services.oauth_credential_delete(server=server, actor=admin_user)

    assert refresh in peers.provider.revoked
    assert refresh not in peers.provider.refresh
    assert access not in peers.provider.access


@pytest.mark.django_db
def test_it_clears_the_grant_and_its_token_rows(oauth_server, admin_user):
    connect(server=oauth_server, user=admin_user)

    services.oauth_credential_delete(
        server=McpServer.objects.get(pk=oauth_server.pk), actor=admin_user
    )

    server = McpServer.objects.get(pk=oauth_server.pk)
    assert server.oauth_access_token is None
    assert server.oauth_refresh_token is None
    assert not Token.objects.exists()


@pytest.mark.django_db
def test_it_audits_revocation_and_deletion(oauth_server, admin_user):
    connect(server=oauth_server, user=admin_user)

    services.oauth_credential_delete(
        server=McpServer.objects.get(pk=oauth_server.pk), actor=admin_user
    )

    assert AuditEvent.objects.filter(action=AuditEvent.Action.TOKEN_REVOKED).count() == 1
    assert AuditEvent.objects.get(action=AuditEvent.Action.TOKEN_DELETED).changes == {
        "token_rows": 2
    }


@pytest.mark.django_db
def test_it_still_deletes_when_the_revocation_endpoint_is_unreachable(oauth_server, admin_user):
    connect(server=oauth_server, user=admin_user)
    McpServer.objects.filter(pk=oauth_server.pk).update(
        oauth_revocation_url="http://127.0.0.1:9/revoke"
    )

    services.oauth_credential_delete(server=McpServer.objects.get(pk=oauth_server.pk))

    assert McpServer.objects.get(pk=oauth_server.pk).oauth_access_token is None
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.TOKEN_REVOKED).exists()


@pytest.mark.django_db
def test_it_deletes_token_rows_past_their_expiry(admin_user, celery_eager):
    expired = Token.objects.create(
        user=admin_user, type=Token.Type.OAUTH_ACCESS, identifier="x", token="a",
        expires_at=timezone.now() - timedelta(seconds=1),
    )  # fmt: skip
    live = Token.objects.create(
        user=admin_user, type=Token.Type.OAUTH_REFRESH, identifier="x", token="r"
    )

    assert tasks.tokens_cleanup_expired.delay().get() == 1

    assert list(Token.objects.all()) == [live]
    event = AuditEvent.objects.get(action=AuditEvent.Action.TOKEN_DELETED)
    assert event.entity_id == str(expired.pk)


@pytest.mark.django_db
def test_deleting_a_connected_server_revokes_its_grant_first(oauth_server, admin_user, peers):
    from servers.services import server_delete

    connect(server=oauth_server, user=admin_user)
    server = McpServer.objects.get(pk=oauth_server.pk)
    refresh = server.oauth_refresh_token.reveal()

    server_delete(actor=admin_user, server=server)

    assert refresh in peers.provider.revoked
    assert not McpServer.objects.filter(pk=oauth_server.pk).exists()
    assert not Token.objects.exists()
