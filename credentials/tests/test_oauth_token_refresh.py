"""Refreshing grants: rotation, invalid_grant, a down authorization server, races."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection as db_connection
from django.db import connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AuditEvent
from credentials import services, tasks
from credentials.models import Grant
from credentials.services.resolve import Unusable
from credentials.tests.conftest import connect, credential_headers, list_tool_names, shared_grant
from servers.models import Agent, McpServer


def _connected(server: McpServer, user, *, expires_in: timedelta = timedelta(minutes=2)) -> Grant:
    """Connect for real, then age the grant so it is due for refresh."""
    assert connect(server=server, user=user).status_code == 200
    Grant.objects.filter(server=server).update(expires_at=timezone.now() + expires_in)
    return shared_grant(server)


def _refresh(grant: Grant) -> str | None:
    return services.grants_refresh(grant_ids=[grant.pk], budget=15).get(grant.pk)


@pytest.mark.django_db
def test_it_stores_the_rotated_refresh_token_in_the_same_write(oauth_server, admin_user, peers):
    grant = _connected(oauth_server, admin_user)
    old_refresh = grant.refresh_secret.reveal()

    assert _refresh(grant) == "refreshed"

    grant.refresh_from_db()
    assert grant.refresh_secret.reveal() in peers.provider.refresh
    assert old_refresh not in peers.provider.refresh
    assert (grant.refresh_claim, grant.refresh_claimed_until) == ("", None)


@pytest.mark.django_db
def test_it_keeps_the_old_refresh_token_when_none_is_returned(oauth_server, admin_user, peers):
    grant = _connected(oauth_server, admin_user)
    old_refresh = grant.refresh_secret.reveal()
    peers.provider.rotate_refresh = False

    assert _refresh(grant) == "refreshed"

    grant.refresh_from_db()
    assert grant.refresh_secret.reveal() == old_refresh
    assert list_tool_names(oauth_server.url, credential_headers(server=oauth_server)) == ["echo"]


@pytest.mark.django_db
def test_it_does_not_refresh_a_grant_that_is_not_due(oauth_server, admin_user, peers):
    connect(server=oauth_server, user=admin_user)

    assert _refresh(shared_grant(oauth_server)) is None
    assert peers.provider.token_calls["refresh_token"] == 0


@pytest.mark.django_db
def test_it_audits_a_refresh_without_the_secret(oauth_server, admin_user):
    grant = _connected(oauth_server, admin_user)

    _refresh(grant)

    grant.refresh_from_db()
    event = AuditEvent.objects.get(action=AuditEvent.Action.REFRESH)
    assert event.actor is None
    assert grant.secret.reveal() not in str(event.changes)
    assert grant.refresh_secret.reveal() not in str(event.changes)


@pytest.mark.django_db
def test_it_marks_needs_reauth_on_invalid_grant_and_stops(
    oauth_server, admin_user, peers, celery_eager
):
    grant = _connected(oauth_server, admin_user)
    peers.provider.refresh.clear()  # the AS forgot (revoked) every refresh token

    assert tasks.grant_refresh_batch.delay([grant.pk]).get() == {"needs_reauth": 1}
    assert tasks.grant_refresh_due.delay().get() == 0  # not picked up again

    grant.refresh_from_db()
    assert grant.needs_reauth is True
    assert "invalid_grant" in grant.reauth_reason
    assert grant.refresh_claimed_until is None
    assert peers.provider.token_calls["refresh_token"] == 1
    assert AuditEvent.objects.filter(action=AuditEvent.Action.NEEDS_REAUTH).count() == 1
    with pytest.raises(Unusable, match="needs re-authorization"):
        credential_headers(server=oauth_server)


@pytest.mark.django_db
def test_it_leaves_the_token_untouched_and_backs_off_when_the_server_is_down(
    oauth_server, admin_user, peers
):
    grant = _connected(oauth_server, admin_user)
    before = (grant.secret, grant.refresh_secret, grant.expires_at)
    peers.provider.fail_status = 503

    assert _refresh(grant) == "failed"

    grant.refresh_from_db()
    assert (grant.secret, grant.refresh_secret, grant.expires_at) == before
    assert (grant.refresh_claim, grant.needs_reauth) == ("", False)
    assert grant.refresh_failures == 1
    assert grant.refresh_not_before > timezone.now()  # one attempt per backoff step
    failed = AuditEvent.objects.get(action=AuditEvent.Action.REFRESH_FAILED)
    assert failed.changes == {"error": "server_error", "retry_in_seconds": 30.0}


@pytest.mark.django_db
def test_a_failing_server_sees_one_attempt_per_backoff_step_from_every_path(
    oauth_server, admin_user, peers, celery_eager
):
    grant = _connected(oauth_server, admin_user)
    peers.provider.fail_status = 503

    for _ in range(20):  # the beat, health sweeps and client configs all asking at once
        tasks.grant_refresh_due.delay()
        services.grants_refresh_for(needs=[(oauth_server, None)], budget=5)

    assert peers.provider.token_calls["refresh_token"] == 1
    assert AuditEvent.objects.filter(action=AuditEvent.Action.REFRESH_FAILED).count() == 1
    peers.provider.fail_status = None
    Grant.objects.filter(pk=grant.pk).update(refresh_not_before=timezone.now())
    assert _refresh(grant) == "refreshed"  # and it recovers after the step


@pytest.mark.django_db
def test_it_refreshes_a_token_expiring_within_five_minutes_before_use(
    oauth_server, admin_user, peers
):
    grant = _connected(oauth_server, admin_user, expires_in=timedelta(minutes=3))
    old_access = grant.secret.reveal()

    headers = credential_headers(server=oauth_server)

    assert headers["Authorization"] != f"Bearer {old_access}"
    assert list_tool_names(oauth_server.url, headers) == ["echo"]


@pytest.mark.django_db
def test_an_expired_token_is_never_handed_out(oauth_server, admin_user, peers):
    _connected(oauth_server, admin_user, expires_in=timedelta(seconds=-5))
    peers.provider.fail_status = 503  # the renewal fails

    with pytest.raises(Unusable, match="expired"):
        credential_headers(server=oauth_server)


@pytest.mark.django_db
def test_it_refreshes_a_per_agent_grant(oauth_server, admin_user, peers):
    McpServer.objects.filter(pk=oauth_server.pk).update(
        credential_mode=McpServer.CredentialMode.PER_AGENT
    )
    server = McpServer.objects.get(pk=oauth_server.pk)
    agent = Agent.objects.create(name="bot", owner=admin_user)
    assert connect(server=server, user=admin_user, agent=agent).status_code == 200
    Grant.objects.filter(agent=agent).update(expires_at=timezone.now() - timedelta(seconds=1))

    headers = credential_headers(server=server, agent=agent)

    assert list_tool_names(server.url, headers) == ["echo"]
    assert shared_grant(server) is None  # nothing shared
    assert peers.provider.token_calls["refresh_token"] == 1


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_it_lets_exactly_one_of_two_racing_workers_refresh(oauth_server, admin_user, peers):
    if db_connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite serialises writers, so there is no real race")
    grant = _connected(oauth_server, admin_user)
    old_refresh = grant.refresh_secret.reveal()
    peers.provider.token_delay = 0.5  # keep the winner inside its claim while the other tries
    barrier, results = threading.Barrier(2), []

    def worker() -> None:
        try:
            barrier.wait(timeout=5)
            results.append(_refresh(grant))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    assert sorted(results, key=str) == [None, "refreshed"]
    assert peers.provider.token_calls["refresh_token"] == 1
    grant.refresh_from_db()
    assert grant.refresh_secret.reveal() in peers.provider.refresh  # the rotated one
    assert old_refresh not in peers.provider.refresh
    assert grant.refresh_claimed_until is None


@pytest.mark.django_db
def test_every_refresh_counts_by_result_for_metrics(oauth_server, admin_user, peers, client):
    from servers.tests.test_health_metrics import scrape

    name = "mcpcontrol_token_refreshes_total"
    before = scrape(client)
    grant = _connected(oauth_server, admin_user)
    _refresh(grant)
    Grant.objects.filter(pk=grant.pk).update(expires_at=timezone.now())
    peers.provider.fail_status = 503
    _refresh(grant)

    after = scrape(client)
    for result in ("refreshed", "failed"):
        key = (name, (("result", result),))
        assert after[key] - before.get(key, 0) == 1


@pytest.mark.django_db
def test_a_slow_server_that_rotated_the_token_means_reconnect_said_once(
    oauth_server, admin_user, peers, settings
):
    grant = _connected(oauth_server, admin_user)
    settings.MCPCONTROL_HTTP_TIMEOUT_SECONDS = 1
    peers.provider.token_delay = 2  # answers after our timeout, having rotated the token
    assert _refresh(grant) == "failed"
    grant.refresh_from_db()
    assert grant.refresh_uncertain and not grant.needs_reauth  # the old token may still work
    peers.provider.token_delay = 0
    Grant.objects.filter(pk=grant.pk).update(refresh_not_before=timezone.now())  # next step
    time.sleep(2.5)  # the server finished the slow request: it rotated the token meanwhile

    assert _refresh(grant) == "needs_reauth"
    for _ in range(5):  # nothing more asks the server, nothing more is recorded
        _refresh(grant)

    grant.refresh_from_db()
    assert "rotated" in grant.reauth_reason
    assert peers.provider.token_calls["refresh_token"] == 2
    assert AuditEvent.objects.filter(action=AuditEvent.Action.NEEDS_REAUTH).count() == 1
    assert AuditEvent.objects.filter(action=AuditEvent.Action.REFRESH_FAILED).count() == 1


@pytest.mark.django_db
def test_it_stores_a_batch_of_refreshes_in_one_transaction(oauth_server, admin_user, peers):
    other = McpServer.objects.create(
        name="Protected 2", path="/protected-2", url=peers.mcp_url,
        auth_type=McpServer.AuthType.OAUTH,
    )  # fmt: skip
    grants = [_connected(oauth_server, admin_user), _connected(other, admin_user)]

    with CaptureQueriesContext(db_connection) as queries:
        outcomes = services.grants_refresh(grant_ids=[g.pk for g in grants], budget=15)

    assert outcomes == {grants[0].pk: "refreshed", grants[1].pk: "refreshed"}
    for grant in grants:
        grant.refresh_from_db()
        assert grant.refresh_secret.reveal() in peers.provider.refresh
    assert AuditEvent.objects.filter(action=AuditEvent.Action.REFRESH).count() == 2
    # INSERT INTO "audit_... on SQL, db.audit_auditevent.insert_many(...) on MongoDB
    audit_inserts = [q for q in queries if q["sql"].startswith(('INSERT INTO "audit_', "db.audit_"))
                     and "insert" in q["sql"].split("(")[0].lower()]  # fmt: skip
    assert len(audit_inserts) == 1
