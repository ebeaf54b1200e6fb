"""Ending a grant revokes it upstream (RFC 7009) before it is deleted."""

import pytest
from django.db.models import Q

from audit.models import AuditEvent
from credentials import services
from credentials.models import Grant
from credentials.tests.conftest import connect, shared_grant
from servers.models import McpServer


@pytest.mark.django_db
def test_it_revokes_the_grant_at_the_authorization_server(oauth_server, admin_user, peers):
    connect(server=oauth_server, user=admin_user)
    grant = shared_grant(oauth_server)
    refresh, access = grant.refresh_secret.reveal(), grant.secret.reveal()

    services.grants_forget(server=oauth_server, actor=admin_user)

    assert refresh in peers.provider.revoked
    assert refresh not in peers.provider.refresh
    assert access not in peers.provider.access
    assert not Grant.objects.exists()


@pytest.mark.django_db
def test_it_audits_revocation_and_deletion(oauth_server, admin_user):
    connect(server=oauth_server, user=admin_user)

    services.grants_forget(server=oauth_server, actor=admin_user)

    events = AuditEvent.objects.filter(entity_type="grant")
    assert events.filter(action=AuditEvent.Action.REVOKE, actor=admin_user).count() == 1
    deleted = events.get(action=AuditEvent.Action.DELETE)
    assert deleted.changes == {"secret": {"old": "[redacted]", "new": None}, "revoked": True}


@pytest.mark.django_db
def test_it_still_deletes_when_the_revocation_endpoint_is_unreachable(oauth_server, admin_user):
    connect(server=oauth_server, user=admin_user)
    server = McpServer.objects.get(pk=oauth_server.pk)
    server.oauth = {**server.oauth, "revocation_endpoint": "http://127.0.0.1:9/revoke"}
    server.save(update_fields=["oauth"])

    services.grants_forget(server=server, actor=None)

    assert not Grant.objects.exists()
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.REVOKE).exists()


@pytest.mark.django_db
def test_deleting_a_connected_server_revokes_its_grant_first(oauth_server, admin_user, peers):
    from servers.services import server_delete

    connect(server=oauth_server, user=admin_user)
    refresh = shared_grant(oauth_server).refresh_secret.reveal()

    server_delete(actor=admin_user, server=McpServer.objects.get(pk=oauth_server.pk))

    assert refresh in peers.provider.revoked
    assert not McpServer.objects.filter(pk=oauth_server.pk).exists()
    assert not Grant.objects.exists()


@pytest.mark.django_db
def test_changing_the_auth_type_ends_the_stored_credential(oauth_server, admin_user, peers):
    from servers.services import server_update

    connect(server=oauth_server, user=admin_user)
    refresh = shared_grant(oauth_server).refresh_secret.reveal()

    server_update(actor=admin_user, server=McpServer.objects.get(pk=oauth_server.pk),
                  changes={"auth_type": "none"})  # fmt: skip

    assert refresh in peers.provider.revoked  # a credential for another scheme is no use
    assert not Grant.objects.exists()
    assert AuditEvent.objects.filter(Q(action="delete") & Q(entity_type="grant")).exists()
