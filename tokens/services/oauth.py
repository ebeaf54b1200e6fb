"""OAuth 2.1 for upstream MCP servers: discovery, registration, connect, refresh, revocation.

Grants live in one of two slots: the server's shared oauth_* fields, or an AgentConnection
(per_agent mode). The protocol itself is in tokens.oauth; this module stores and audits.
"""

import hashlib
import hmac
import logging
import random
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_event_create
from mcpcontrol.lib.fields import reveal
from servers.models import Agent, AgentConnection, McpServer
from tokens import oauth
from tokens.models import OAuthState, Token

logger = logging.getLogger(__name__)

STATE_TTL = timedelta(minutes=10)
# A refresh lease outlives any token request (10 s timeout), so a live worker never loses it;
# a crashed worker's lease lapses and the next run takes over.
CLAIM_TTL = timedelta(minutes=2)
REFRESH_MARGIN = timedelta(minutes=5)  # the beat refreshes grants expiring this soon
USE_MARGIN = timedelta(seconds=30)  # a grant this close to expiry is refreshed before use
WAIT_FOR_OTHER_WORKER_SECONDS = 5.0
# The server rejected the grant or the client: retrying cannot help, a human must reconnect.
REAUTH_ERRORS = frozenset({"invalid_grant", "invalid_client", "unauthorized_client"})


@dataclass(frozen=True)
class _Slot:
    """Field names of one place a grant is stored, so the claim logic is written once."""

    model: type[models.Model]
    expires: str
    claimed: str
    reauth: str
    access: str
    refresh: str


_SERVER = _Slot(
    McpServer,
    "oauth_expires_at",
    "oauth_refresh_claimed_at",
    "oauth_needs_reauth",
    "oauth_access_token",
    "oauth_refresh_token",
)
_CONNECTION = _Slot(
    AgentConnection,
    "expires_at",
    "refresh_claimed_at",
    "needs_reauth",
    "access_token",
    "refresh_token",
)


def _state_hash(state: str) -> str:
    return hmac.new(settings.TOKEN_PEPPER.encode(), state.encode(), hashlib.sha256).hexdigest()


def _redirect_uri(server: McpServer) -> str:
    return server.oauth_redirect_uri or f"{settings.MCPCONTROL_PUBLIC_URL}/oauth/callback"


def _resource(server: McpServer) -> str:
    """The RFC 8707 resource: what the protected resource metadata names, else the URL."""
    return str((server.oauth_metadata or {}).get("resource") or server.url)


def _client_auth(server: McpServer) -> oauth.ClientAuth:
    if server.oauth_client_id is None:
        raise oauth.OAuthError("no_client", f"{server.name} has no OAuth client registered")
    return oauth.ClientAuth(
        client_id=server.oauth_client_id.reveal(),
        client_secret=reveal(server.oauth_client_secret),
        method=server.oauth_token_endpoint_auth_method or "client_secret_post",
    )


# --- Discovery and registration --------------------------------------------------------


def oauth_discover(*, server: McpServer, actor: Any = None) -> McpServer:
    """Discover the server's authorization server and store its endpoints and metadata."""
    found = oauth.discover(server.url)
    server.oauth_issuer = found.issuer
    server.oauth_authorization_url = found.endpoint("authorization_endpoint")
    server.oauth_token_url = found.endpoint("token_endpoint")
    server.oauth_registration_url = found.endpoint("registration_endpoint")
    server.oauth_revocation_url = found.endpoint("revocation_endpoint")
    # Ask for what the resource says it needs; an operator's explicit choice wins.
    scopes = found.resource_metadata.get("scopes_supported") or []
    server.oauth_scopes = server.oauth_scopes or " ".join(str(s) for s in scopes)
    server.oauth_pkce_methods = list(found.metadata.get("code_challenge_methods_supported") or [])
    server.oauth_metadata = {
        "resource": found.resource,
        "authorization_server": found.metadata,
        "protected_resource": found.resource_metadata,
    }
    fields = [
        "oauth_issuer", "oauth_authorization_url", "oauth_token_url", "oauth_registration_url",
        "oauth_revocation_url", "oauth_scopes", "oauth_pkce_methods", "oauth_metadata",
    ]  # fmt: skip
    with transaction.atomic():
        server.save(update_fields=[*fields, "updated_at"])
        changes = {f: getattr(server, f) for f in fields[:6]}
        audit_event_create(
            action=AuditEvent.Action.OAUTH_DISCOVERED, target=server, actor=actor, changes=changes
        )
    return server


def oauth_client_register(*, server: McpServer, actor: Any = None) -> bool:
    """Register a client (RFC 7591) unless one is configured. Return True if it registered."""
    if server.oauth_client_id is not None:
        return False  # pre-registered (operator-entered) or registered earlier
    if not server.oauth_registration_url:
        raise oauth.OAuthError(
            "no_client",
            f"{server.name} has no OAuth client and its server offers no client registration",
        )
    machine = server.oauth_grant_type == McpServer.OAuthGrant.CLIENT_CREDENTIALS
    registration = oauth.register(
        registration_url=server.oauth_registration_url,
        redirect_uris=[_redirect_uri(server)],
        scope=server.oauth_scopes,
        client_name=f"mcpcontrol ({server.name})",
        grant_types=["client_credentials"] if machine else ["authorization_code", "refresh_token"],
    )
    server.oauth_client_id = registration.client_id  # type: ignore[assignment]
    server.oauth_client_secret = registration.client_secret or None  # type: ignore[assignment]
    server.oauth_token_endpoint_auth_method = registration.token_endpoint_auth_method
    fields = ["oauth_client_id", "oauth_client_secret", "oauth_token_endpoint_auth_method"]
    with transaction.atomic():
        server.save(update_fields=[*fields, "updated_at"])
        changes = {
            "oauth_client_id": {"new": "[redacted]"},
            "auth_method": registration.token_endpoint_auth_method,
        }
        audit_event_create(
            action=AuditEvent.Action.OAUTH_REGISTERED, target=server, actor=actor, changes=changes
        )
    return True


def _ensure_client(*, server: McpServer, actor: Any) -> None:
    if not server.oauth_token_url:
        oauth_discover(server=server, actor=actor)
    oauth_client_register(server=server, actor=actor)


# --- Authorization code + PKCE ---------------------------------------------------------


def oauth_authorization_start(
    *, server: McpServer, user: Any, agent: Agent | None = None, return_url: str = ""
) -> str:
    """Begin the authorization code flow; return the URL to send the user's browser to.

    1. Check the mode: shared grants take no agent, per_agent grants need one.
    2. Discover and register a client when that has not happened yet.
    3. Store a single-use state with the PKCE verifier, then build the URL (S256, resource).
    """
    per_agent = server.credential_mode == McpServer.CredentialMode.PER_AGENT
    if per_agent != (agent is not None):
        need = "an agent_id (per_agent mode)" if per_agent else "no agent_id (shared mode)"
        raise oauth.OAuthError("invalid_request", f"{server.name} needs {need}")
    if server.oauth_grant_type != McpServer.OAuthGrant.AUTHORIZATION_CODE:
        raise oauth.OAuthError(
            "invalid_request", f"{server.name} uses the client credentials grant"
        )
    _ensure_client(server=server, actor=user)
    if server.oauth_pkce_methods and "S256" not in server.oauth_pkce_methods:
        raise oauth.OAuthError(
            "pkce_unsupported", "the authorization server does not offer PKCE S256"
        )
    state, verifier = secrets.token_urlsafe(32), oauth.code_verifier()
    OAuthState.objects.create(
        state_hash=_state_hash(state),
        code_verifier=verifier,
        user=user,
        server=server,
        agent=agent,
        redirect_uri=_redirect_uri(server),
        resource=_resource(server),
        return_url=return_url,
        expires_at=timezone.now() + STATE_TTL,
    )
    params = {
        "response_type": "code",
        "client_id": _client_auth(server).client_id,
        "redirect_uri": _redirect_uri(server),
        "state": state,
        "code_challenge": oauth.code_challenge(verifier),
        "code_challenge_method": "S256",
        "resource": _resource(server),  # RFC 8707: the token is audience-bound to this server
    }
    if server.oauth_scopes:
        params["scope"] = server.oauth_scopes
    separator = "&" if "?" in server.oauth_authorization_url else "?"
    return f"{server.oauth_authorization_url}{separator}{urlencode(params)}"


def _state_consume(*, state: str, user: Any) -> OAuthState:
    """Claim the state: unused, unexpired and the same user, in one conditional update."""
    now = timezone.now()
    consumed = OAuthState.objects.filter(
        state_hash=_state_hash(state), user=user, used_at=None, expires_at__gt=now
    ).update(used_at=now)  # a replay or a second tab finds used_at set and gets 0 rows
    if consumed != 1:
        raise oauth.OAuthError(
            "invalid_state", "The sign-in link is invalid, expired or already used."
        )
    return OAuthState.objects.select_related("server", "agent").get(state_hash=_state_hash(state))


def oauth_authorization_complete(
    *, state: str, code: str, user: Any, error: str = "", error_description: str = ""
) -> OAuthState:
    """Finish the flow at the callback: consume the state, exchange the code, store the grant.

    Raises OAuthError with the server's error (access_denied, invalid_grant, ...) or
    invalid_state; nothing is stored then.
    """
    flow = _state_consume(state=state, user=user)
    if error:
        raise oauth.OAuthError(error, error_description or "The authorization server refused.")
    if not code:
        raise oauth.OAuthError("invalid_request", "The callback carried no authorization code.")
    server = flow.server
    grant = oauth.token_request(
        token_url=server.oauth_token_url,
        auth=_client_auth(server),
        params={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": flow.redirect_uri,
            "code_verifier": reveal(flow.code_verifier),
            "resource": flow.resource,
        },
    )
    connection = None
    if flow.agent is not None:
        connection, _ = AgentConnection.objects.get_or_create(agent=flow.agent, server=server)
    _grant_store(server=server, connection=connection, grant=grant, owner=user, actor=user)
    return flow


def oauth_client_credentials_fetch(*, server: McpServer, actor: Any = None) -> None:
    """Get a machine-to-machine token (client credentials grant) and store it as shared."""
    _ensure_client(server=server, actor=actor)
    grant = _client_credentials_grant(server)
    _grant_store(server=server, connection=None, grant=grant, owner=None, actor=actor)


def _client_credentials_grant(server: McpServer) -> oauth.Grant:
    params = {"grant_type": "client_credentials", "scope": server.oauth_scopes}
    params["resource"] = _resource(server)
    return oauth.token_request(
        token_url=server.oauth_token_url, auth=_client_auth(server), params=params
    )


# --- Storing a grant -------------------------------------------------------------------


def _grant_store(
    *,
    server: McpServer,
    connection: AgentConnection | None,
    grant: oauth.Grant,
    owner: Any,
    actor: Any,
) -> None:
    """Write a grant to its slot, mirror it to Token rows, audit; one transaction.

    owner set (a fresh connect): the owner's Token rows for this grant are replaced.
    owner None (a refresh): existing Token rows of this grant are updated in place.
    """
    expires_at = grant.expires_at(timezone.now())
    row: McpServer | AgentConnection
    with transaction.atomic():
        if connection is None:
            server.set_oauth_grant(
                access_token=grant.access_token,
                refresh_token=grant.refresh_token,
                expires_at=expires_at,
            )
            server.oauth_refresh_claimed_at = None
            row, slot = server, _SERVER
        else:
            connection.set_grant(
                access_token=grant.access_token,
                refresh_token=grant.refresh_token,
                expires_at=expires_at,
            )
            connection.refresh_claimed_at = None
            row, slot = connection, _CONNECTION
        # update_fields: a row deleted meanwhile raises instead of being re-inserted. The
        # new refresh token replaces the old one in this same write (rotation).
        row.save(
            update_fields=[
                slot.access,
                slot.refresh,
                slot.expires,
                slot.claimed,
                slot.reauth,
                "updated_at",
            ]
        )
        agent_id = connection.agent_id if connection is not None else None
        if owner is not None:
            _token_rows_replace(
                server=server, agent_id=agent_id, owner=owner, grant=grant, expires_at=expires_at
            )
        else:
            _token_rows_update(server=server, agent_id=agent_id, grant=grant, expires_at=expires_at)
        action = (
            AuditEvent.Action.TOKEN_STORED
            if owner is not None
            else AuditEvent.Action.TOKEN_REFRESHED
        )
        changes = {
            "expires_at": expires_at.isoformat() if expires_at else None,
            "refresh_token": "[rotated]" if grant.refresh_token else "[kept]",
        }
        audit_event_create(action=action, target=row, actor=actor, changes=changes)


def _token_rows(*, server: McpServer, agent_id: int | None) -> models.QuerySet[Token]:
    return Token.objects.filter(metadata__server_id=server.id, metadata__agent_id=agent_id)


def _token_rows_replace(
    *,
    server: McpServer,
    agent_id: int | None,
    owner: Any,
    grant: oauth.Grant,
    expires_at: datetime | None,
) -> None:
    _token_rows(server=server, agent_id=agent_id).filter(user=owner).delete()
    identifier = f"mcp:{server.server_key}" + (f":agent:{agent_id}" if agent_id else "")
    metadata = {"server_id": server.id, "agent_id": agent_id, "scope": grant.scope}
    access = Token.objects.create(
        user=owner, email=getattr(owner, "email", "") or "", type=Token.Type.OAUTH_ACCESS,
        identifier=identifier, token=grant.access_token, expires_at=expires_at, metadata=metadata,
    )  # fmt: skip
    if grant.refresh_token:
        refresh = Token.objects.create(
            user=owner, email=access.email, type=Token.Type.OAUTH_REFRESH, identifier=identifier,
            token=grant.refresh_token, metadata={**metadata, "paired_token_id": access.id},
        )  # fmt: skip
        access.metadata = {**metadata, "paired_token_id": refresh.id}
        access.save(update_fields=["metadata"])


def _token_rows_update(
    *, server: McpServer, agent_id: int | None, grant: oauth.Grant, expires_at: datetime | None
) -> None:
    rows = _token_rows(server=server, agent_id=agent_id)
    for access in rows.filter(type=Token.Type.OAUTH_ACCESS):
        access.token = grant.access_token  # type: ignore[assignment]
        access.expires_at = expires_at
        access.save(update_fields=["token", "expires_at", "updated_at"])
    if grant.refresh_token:  # an absent refresh token keeps the old one (RFC 6749 section 6)
        for refresh in rows.filter(type=Token.Type.OAUTH_REFRESH):
            refresh.token = grant.refresh_token  # type: ignore[assignment]
            refresh.save(update_fields=["token", "updated_at"])


# --- Refresh ---------------------------------------------------------------------------


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


# --- Deletion, revocation, cleanup -----------------------------------------------------


def _revoke_quietly(server: McpServer, tokens: list[tuple[str, str]]) -> bool:
    """Revoke (RFC 7009) what we can; deletion goes ahead even if the server is down."""
    if not server.oauth_revocation_url or server.oauth_client_id is None:
        return False
    try:
        for token, hint in tokens:
            oauth.revoke(
                revocation_url=server.oauth_revocation_url,
                auth=_client_auth(server),
                token=token,
                token_type_hint=hint,
            )
    except oauth.OAuthError as exc:
        logger.warning("Revocation at %s failed: %s", server.name, exc.code)
        return False
    return True


def oauth_credential_delete(
    *, server: McpServer, connection: AgentConnection | None = None, actor: Any = None
) -> None:
    """Delete a grant (shared or one agent's): revoke it upstream, clear it, drop Token rows."""
    slot, row = (_SERVER, server) if connection is None else (_CONNECTION, connection)
    secrets_ = [
        (getattr(row, slot.refresh), "refresh_token"),
        (getattr(row, slot.access), "access_token"),
    ]
    revoked = _revoke_quietly(server, [(s.reveal(), hint) for s, hint in secrets_ if s is not None])
    with transaction.atomic():
        slot.model.objects.filter(pk=row.pk).update(
            **{slot.access: None, slot.refresh: None, slot.expires: None, slot.claimed: None}
        )
        agent_id = connection.agent_id if connection is not None else None
        deleted, _ = _token_rows(server=server, agent_id=agent_id).delete()
        if revoked:
            audit_event_create(action=AuditEvent.Action.TOKEN_REVOKED, target=row, actor=actor)
        changes = {"token_rows": deleted}
        audit_event_create(
            action=AuditEvent.Action.TOKEN_DELETED, target=row, actor=actor, changes=changes
        )
    for field in (slot.access, slot.refresh, slot.expires, slot.claimed):
        setattr(row, field, None)


def tokens_cleanup_expired() -> int:
    """Delete Token rows past expires_at, one audit event each; return how many."""
    count = 0
    for token in Token.objects.expired().only("id", "type", "identifier", "user_id"):
        with transaction.atomic():
            deleted, _ = Token.objects.filter(pk=token.pk, expires_at__lte=timezone.now()).delete()
            if deleted:  # a refresh may have renewed it since the query
                changes = {"type": token.type, "identifier": token.identifier, "reason": "expired"}
                audit_event_create(
                    action=AuditEvent.Action.TOKEN_DELETED, target=token, changes=changes
                )
                count += 1
    return count
