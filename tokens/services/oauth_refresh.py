"""Refreshing upstream OAuth grants: the lease, one refresh, refresh-before-use, the beat.

A refresh is claimed with a conditional UPDATE on the grant's slot (see oauth_grants._Slot),
so of several workers and request handlers exactly one talks to the token endpoint.
"""

import logging
import random
import time
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_event_create
from servers.models import AgentConnection, McpServer
from tokens import oauth
from tokens.services.oauth_connect import oauth_client_credentials_fetch
from tokens.services.oauth_grants import (
    _CONNECTION,
    _SERVER,
    _client_auth,
    _client_credentials_grant,
    _grant_store,
    _resource,
    _Slot,
)

logger = logging.getLogger(__name__)

# A refresh lease outlives any token request (10 s timeout), so a live worker never loses it;
# a crashed worker's lease lapses and the next run takes over.
CLAIM_TTL = timedelta(minutes=2)
REFRESH_MARGIN = timedelta(minutes=5)  # the beat refreshes grants expiring this soon
USE_MARGIN = timedelta(seconds=30)  # a grant this close to expiry is refreshed before use
WAIT_FOR_OTHER_WORKER_SECONDS = 5.0
# The server rejected the grant or the client: retrying cannot help, a human must reconnect.
REAUTH_ERRORS = frozenset({"invalid_grant", "invalid_client", "unauthorized_client"})


def _claim(slot: _Slot, pk: int, *, margin: timedelta) -> datetime | None:
    now = timezone.now()
    claimable = Q(**{slot.claimed: None}) | Q(**{f"{slot.claimed}__lt": now - CLAIM_TTL})
    due = Q(**{f"{slot.expires}__lt": now + margin})
    claimed = slot.model.objects.filter(claimable, due, pk=pk, **{slot.reauth: False}).update(
        **{slot.claimed: now}
    )  # the conditional UPDATE is the claim: exactly one worker can win it
    return now if claimed == 1 else None


def _release(slot: _Slot, pk: int, claimed_at: datetime) -> None:
    slot.model.objects.filter(pk=pk, **{slot.claimed: claimed_at}).update(**{slot.claimed: None})


def _refresh_grant(server: McpServer, row: Any, slot: _Slot) -> oauth.Grant:
    refresh_token = getattr(row, slot.refresh)
    if refresh_token is None and server.oauth_grant_type == McpServer.OAuthGrant.CLIENT_CREDENTIALS:
        return _client_credentials_grant(server)  # machine grants simply ask again
    if refresh_token is None:
        raise oauth.OAuthError("invalid_grant", "no refresh token stored")
    params = {"grant_type": "refresh_token", "refresh_token": refresh_token.reveal()}
    params["resource"] = _resource(server)
    return oauth.token_request(
        token_url=server.oauth_token_url, auth=_client_auth(server), params=params
    )


def oauth_token_refresh(
    *, server_id: int, connection_id: int | None = None, margin: timedelta = REFRESH_MARGIN
) -> bool:
    """Refresh one grant (the server's shared one, or a connection's) if it is due.

    Returns False when it is not due, needs re-authorization, or another worker holds the
    lease. Transient failures release the lease and raise OAuthTransientError (the task
    retries them); invalid_grant marks the grant as needing re-authorization.
    """
    slot, pk = (_CONNECTION, connection_id) if connection_id else (_SERVER, server_id)
    claimed_at = _claim(slot, pk, margin=margin)
    if claimed_at is None:
        return False  # still fresh, deleted, needs re-auth, or claimed by a live worker
    row: Any = slot.model.objects.get(pk=pk)
    server = row if slot is _SERVER else McpServer.objects.get(pk=row.server_id)
    try:
        grant = _refresh_grant(server, row, slot)
    except oauth.OAuthError as exc:
        _refresh_failed(slot=slot, row=row, claimed_at=claimed_at, error=exc)
        if isinstance(exc, oauth.OAuthTransientError):
            raise
        return False
    except BaseException:
        _release(slot, pk, claimed_at)  # never strand the lease, whatever went wrong
        raise
    _grant_store(
        server=server,
        connection=None if slot is _SERVER else row,
        grant=grant,
        owner=None,
        actor=None,
    )
    return True


def _refresh_failed(
    *, slot: _Slot, row: Any, claimed_at: datetime, error: oauth.OAuthError
) -> None:
    reauth = error.code in REAUTH_ERRORS and not isinstance(error, oauth.OAuthTransientError)
    with transaction.atomic():
        updates: dict[str, Any] = {slot.claimed: None}
        if reauth:
            updates[slot.reauth] = True
        slot.model.objects.filter(pk=row.pk, **{slot.claimed: claimed_at}).update(**updates)
        changes = {"error": error.code, "retry": isinstance(error, oauth.OAuthTransientError)}
        audit_event_create(
            action=AuditEvent.Action.TOKEN_REFRESH_FAILED, target=row, changes=changes
        )
        if reauth:
            audit_event_create(
                action=AuditEvent.Action.NEEDS_REAUTH, target=row, changes={"error": error.code}
            )
    logger.warning("OAuth refresh of %s failed: %s", row, error.code)


# --- Refresh before use ----------------------------------------------------------------


def _refreshable(server: McpServer, row: Any, slot: _Slot) -> bool:
    if getattr(row, slot.reauth) or getattr(row, slot.access) is None:
        return False
    machine = server.oauth_grant_type == McpServer.OAuthGrant.CLIENT_CREDENTIALS
    return getattr(row, slot.refresh) is not None or (machine and slot is _SERVER)


def _wait_for_other_worker(slot: _Slot, pk: int) -> None:
    """Another worker holds the lease: give it a bounded moment to store the new grant."""
    deadline = time.monotonic() + WAIT_FOR_OTHER_WORKER_SECONDS
    live = Q(**{f"{slot.claimed}__gte": timezone.now() - CLAIM_TTL})
    while time.monotonic() < deadline and slot.model.objects.filter(live, pk=pk).exists():
        time.sleep(0.1)


def _machine_without_token(server: McpServer, connection: Any | None) -> bool:
    machine = server.oauth_grant_type == McpServer.OAuthGrant.CLIENT_CREDENTIALS
    return connection is None and machine and server.oauth_access_token is None


def _machine_token_first(server: McpServer) -> McpServer | None:
    """A client credentials server needs no human: get its first token on first use."""
    try:
        oauth_client_credentials_fetch(server=server)
    except oauth.OAuthError as exc:
        logger.warning("Client credentials grant for %s failed: %s", server.name, exc.code)
        return None
    return server


def oauth_ensure_fresh(*, server: Any, connection: Any | None) -> Any | None:
    """Refresh the grant first if it has expired and can be refreshed; return the fresh row.

    connection=None means the server's shared grant. Returns the reloaded connection (or
    server) when a refresh happened, else None. A failed refresh is logged, not raised: the
    caller then finds needs_reauth set or an upstream 401 and reports auth_required.
    """
    slot, row = (_SERVER, server) if connection is None else (_CONNECTION, connection)
    if _machine_without_token(server, connection):
        return _machine_token_first(server)
    expires_at = getattr(row, slot.expires)
    if expires_at is None or expires_at > timezone.now() + USE_MARGIN:
        return None
    if not _refreshable(server, row, slot):
        return None
    try:
        refreshed = oauth_token_refresh(
            server_id=server.id, connection_id=getattr(connection, "id", None), margin=USE_MARGIN
        )
    except oauth.OAuthError as exc:
        logger.warning("OAuth refresh before use failed for %s: %s", row, exc.code)
        refreshed = False
    if not refreshed:
        _wait_for_other_worker(slot, row.pk)
    if slot is _SERVER:
        server.refresh_from_db(
            fields=[slot.access, slot.refresh, slot.expires, slot.reauth, slot.claimed]
        )
        return server
    return AgentConnection.objects.get(pk=row.pk)


# --- The beat --------------------------------------------------------------------------


def oauth_tokens_refresh_due() -> int:
    """Enqueue a refresh, with jitter, for every grant expiring within REFRESH_MARGIN.

    Enqueueing twice is harmless: the lease in oauth_token_refresh lets one worker through.
    """
    from tokens.tasks import oauth_token_refresh as oauth_token_refresh_task

    now = timezone.now()
    soon, live = now + REFRESH_MARGIN, now - CLAIM_TTL
    machine = Q(oauth_grant_type=McpServer.OAuthGrant.CLIENT_CREDENTIALS)
    servers = McpServer.objects.filter(
        Q(oauth_refresh_token__isnull=False) | machine,
        auth_type=McpServer.AuthType.OAUTH, oauth_needs_reauth=False,
        oauth_access_token__isnull=False, oauth_expires_at__lt=soon,
    ).exclude(oauth_refresh_claimed_at__gte=live)  # fmt: skip
    connections = AgentConnection.objects.filter(
        server__auth_type=McpServer.AuthType.OAUTH, needs_reauth=False,
        refresh_token__isnull=False, expires_at__lt=soon,
    ).exclude(refresh_claimed_at__gte=live)  # fmt: skip
    jobs = [{"server_id": pk} for pk in servers.values_list("id", flat=True)]
    jobs += [
        {"server_id": s, "connection_id": c} for c, s in connections.values_list("id", "server_id")
    ]
    # Jitter spreads a burst of same-minute expiries over half the beat interval.
    spread = settings.MCPCONTROL_OAUTH_REFRESH_INTERVAL_SECONDS / 2
    for kwargs in jobs:
        countdown = random.uniform(0, spread)  # noqa: S311 - timing jitter, not security
        oauth_token_refresh_task.apply_async(kwargs=kwargs, countdown=countdown)
    return len(jobs)
