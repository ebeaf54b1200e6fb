"""Refreshing grants: rotation, invalid_grant, a down authorization server, races."""

import threading
from datetime import timedelta

import pytest
from django.db import connection as db_connection
from django.db import connections
from django.utils import timezone

from audit.models import AuditEvent
from servers.credentials import MissingCredential, credential_headers
from servers.models import Agent, AgentConnection, McpServer
from credentials import services, tasks
from tokens.models import Token
from credentials.oauth import OAuthTransientError
from credentials.tests.conftest import connect, list_tool_names


def _connected(
    server: McpServer, user, *, expires_in: timedelta = timedelta(minutes=2)
) -> McpServer:
    """Connect for real, then age the grant so it is due for refresh."""
    assert connect(server=server, user=user).status_code == 200
    McpServer.objects.filter(pk=server.pk).update(oauth_expires_at=timezone.now() + expires_in)
    return McpServer.objects.get(pk=server.pk)


@pytest.mark.django_db
def test_it_stores_the_rotated_refresh_token_in_the_same_write(oauth_server, admin_user, peers):
    server = _connected(oauth_server, admin_user)
    old_refresh = server.oauth_refresh_token.reveal()

    assert services.oauth_token_refresh(server_id=server.pk) is True

    server.refresh_from_db()
    assert server.oauth_refresh_token.reveal() in peers.provider.refresh
    assert old_refresh not in peers.provider.refresh
    assert server.oauth_refresh_claimed_at is None
    refresh_row = Token.objects.get(type=Token.Type.OAUTH_REFRESH)
    assert refresh_row.token.reveal() == server.oauth_refresh_token.reveal()


@pytest.mark.django_db
def test_it_keeps_the_old_refresh_token_when_none_is_returned(oauth_server, admin_user, peers):
    server = _connected(oauth_server, admin_user)
    old_refresh = server.oauth_refresh_token.reveal()
    peers.provider.rotate_refresh = False

    assert services.oauth_token_refresh(server_id=server.pk) is True

    server.refresh_from_db()
    assert server.oauth_refresh_token.reveal() == old_refresh
    assert list_tool_names(server.url, credential_headers(server=server)) == ["echo"]


@pytest.mark.django_db
def test_it_does_not_refresh_a_grant_that_is_not_due(oauth_server, admin_user, peers):
    connect(server=oauth_server, user=admin_user)

    assert services.oauth_token_refresh(server_id=oauth_server.pk) is False
    assert peers.provider.token_calls["refresh_token"] == 0


@pytest.mark.django_db
def test_it_audits_a_refresh_without_the_secret(oauth_server, admin_user):
    server = _connected(oauth_server, admin_user)

    services.oauth_token_refresh(server_id=server.pk)

    server.refresh_from_db()
    event = AuditEvent.objects.get(action=AuditEvent.Action.TOKEN_REFRESHED)
    assert event.actor is None
    assert server.oauth_access_token.reveal() not in str(event.changes)
    assert server.oauth_refresh_token.reveal() not in str(event.changes)


@pytest.mark.django_db
def test_it_marks_needs_reauth_on_invalid_grant_and_stops(
    oauth_server, admin_user, peers, celery_eager
):
    server = _connected(oauth_server, admin_user)
    peers.provider.refresh.clear()  # the AS forgot (revoked) every refresh token

    assert tasks.oauth_token_refresh.delay(server.pk).get() is False
    assert tasks.oauth_tokens_refresh_due.delay().get() == 0  # not picked up again

    server.refresh_from_db()
    assert server.oauth_needs_reauth is True
    assert server.oauth_refresh_claimed_at is None
    assert peers.provider.token_calls["refresh_token"] == 1
    assert AuditEvent.objects.filter(action=AuditEvent.Action.NEEDS_REAUTH).count() == 1
    with pytest.raises(MissingCredential):
        credential_headers(server=server)


@pytest.mark.django_db
def test_it_leaves_the_token_untouched_and_unclaimed_when_the_server_is_down(
    oauth_server, admin_user, peers
):
    server = _connected(oauth_server, admin_user)
    before = (server.oauth_access_token, server.oauth_refresh_token, server.oauth_expires_at)
    peers.provider.fail_status = 503

    with pytest.raises(OAuthTransientError):
        services.oauth_token_refresh(server_id=server.pk)

    server.refresh_from_db()
    assert (
        server.oauth_access_token,
        server.oauth_refresh_token,
        server.oauth_expires_at,
    ) == before
    assert server.oauth_refresh_claimed_at is None
    assert server.oauth_needs_reauth is False
    failed = AuditEvent.objects.get(action=AuditEvent.Action.TOKEN_REFRESH_FAILED)
    assert failed.changes == {"error": "server_error", "retry": True}


@pytest.mark.django_db
def test_it_retries_a_down_server_a_bounded_number_of_times(
    oauth_server, admin_user, peers, celery_eager
):
    server = _connected(oauth_server, admin_user)
    peers.provider.fail_status = 503

    result = tasks.oauth_token_refresh.apply(args=(server.pk,))

    assert isinstance(result.result, OAuthTransientError)
    assert peers.provider.token_calls["refresh_token"] == tasks.oauth_token_refresh.max_retries + 1
    assert (
        tasks.oauth_token_refresh.retry_backoff
    )  # in a worker the retries back off (eager: at once)
    peers.provider.fail_status = None
    assert services.oauth_token_refresh(server_id=server.pk) is True  # and it recovers


@pytest.mark.django_db
def test_it_refreshes_an_expired_token_before_use(oauth_server, admin_user, peers):
    server = _connected(oauth_server, admin_user, expires_in=timedelta(seconds=-5))
    old_access = server.oauth_access_token.reveal()

    headers = credential_headers(server=server)

    assert headers["Authorization"] != f"Bearer {old_access}"
    assert list_tool_names(server.url, headers) == ["echo"]


@pytest.mark.django_db
def test_it_refreshes_a_per_agent_grant(oauth_server, admin_user, peers):
    McpServer.objects.filter(pk=oauth_server.pk).update(
        credential_mode=McpServer.CredentialMode.PER_AGENT
    )
    server = McpServer.objects.get(pk=oauth_server.pk)
    agent = Agent.objects.create(name="bot", owner=admin_user)
    assert connect(server=server, user=admin_user, agent=agent).status_code == 200
    link = AgentConnection.objects.get(agent=agent, server=server)
    AgentConnection.objects.filter(pk=link.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    headers = credential_headers(server=server, agent=agent)

    assert list_tool_names(server.url, headers) == ["echo"]
    assert McpServer.objects.get(pk=server.pk).oauth_access_token is None  # nothing shared
    assert peers.provider.token_calls["refresh_token"] == 1


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_it_lets_exactly_one_of_two_racing_workers_refresh(oauth_server, admin_user, peers):
    if db_connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite serialises writers, so there is no real race")
    server = _connected(oauth_server, admin_user)
    old_refresh = server.oauth_refresh_token.reveal()
    peers.provider.token_delay = 0.5  # keep the winner inside its lease while the other tries
    barrier, results = threading.Barrier(2), []

    def worker() -> None:
        try:
            barrier.wait(timeout=5)
            results.append(services.oauth_token_refresh(server_id=server.pk))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    assert sorted(results) == [False, True]
    assert peers.provider.token_calls["refresh_token"] == 1
    server.refresh_from_db()
    assert server.oauth_refresh_token.reveal() in peers.provider.refresh  # the rotated one
    assert old_refresh not in peers.provider.refresh
    assert server.oauth_refresh_claimed_at is None
