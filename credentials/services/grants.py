"""Storing and ending grants: static API keys and bearer tokens, and the OAuth grants the
connect flows and refreshes produce. Every write is audited, never with the secret."""

import logging
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import REDACTED, audit_event_create
from credentials import oauth
from credentials.models import Grant
from credentials.services.client import client_auth
from mcpcontrol.lib import secret_refs
from mcpcontrol.lib.headers import value_error
from servers.models import Agent, AgentConnection, McpServer

logger = logging.getLogger(__name__)

_KINDS = {
    McpServer.AuthType.API_KEY: Grant.Kind.API_KEY,
    McpServer.AuthType.BEARER: Grant.Kind.BEARER,
    McpServer.AuthType.OAUTH: Grant.Kind.OAUTH,
}


def _membership(server: McpServer, agent: Agent | None) -> None:
    """A per-agent grant makes the agent a member of the server (AgentConnection)."""
    if agent is not None:
        AgentConnection.objects.get_or_create(agent=agent, server=server)


def grant_set_secret(
    *,
    server: McpServer,
    agent: Agent | None,
    secret: str | None,
    actor: Any,
    refresh: str | None = None,
    expires_at: datetime | None = None,
) -> Grant | None:
    """Store (or, with None or "", delete) the credential a person hands us: the static API
    key or bearer token of a server (agent None) or of one agent, or an OAuth token pair
    obtained elsewhere. The kind follows the server's auth type.

    1. Nothing given: end that principal's grant (revoked upstream if OAuth).
    2. Check the kind and the value, then in one transaction create or replace the grant,
       make the agent a member, and audit it without the secret.
    """
    if not secret:
        grants_forget(server=server, agent=agent, actor=actor, only_agent=True)
        return None
    kind = _kind_for(server, secret, refresh)
    with transaction.atomic():
        grant, created = Grant.objects.get_or_create(
            server=server, agent=agent, defaults={"kind": kind}
        )
        grant.kind, grant.granted_by = kind, _user(actor) or grant.granted_by
        grant.set_tokens(access=secret, refresh=refresh, expires_at=expires_at)
        if kind != Grant.Kind.OAUTH or (created and not refresh):
            grant.refresh_secret = refresh or None
        grant.save()
        _membership(server, agent)
        audit_event_create(
            action=AuditEvent.Action.CREATE if created else AuditEvent.Action.UPDATE,
            target=grant, actor=actor, changes=_grant_changes(grant, created=created),
        )  # fmt: skip
    return grant


def _kind_for(server: McpServer, secret: str, refresh: str | None) -> str:
    """The grant kind the server's auth type takes; ValidationError for a bad credential."""
    kind = _KINDS.get(McpServer.AuthType(server.auth_type))
    if kind is None:
        raise ValidationError({"auth_token": "A server with auth type none takes no credential."})
    if any(value_error(v) for v in (secret, refresh or "")):
        raise ValidationError({"auth_token": "A credential may not contain CR, LF or NUL."})
    # A static credential may be a secret reference (an OAuth token never is): met at save.
    if kind != Grant.Kind.OAUTH and (problem := secret_refs.check(secret)):
        raise ValidationError({"auth_token": problem})
    return kind


def grant_check_secret(*, server: McpServer, secret: str | None) -> None:
    """Raise ValidationError if `secret` could not be stored as the server's credential (as
    the server will be): checked before anything is written, so a refusal writes nothing."""
    if secret:
        _kind_for(server, secret, None)


def _user(actor: Any) -> Any:
    return actor if actor is not None and getattr(actor, "is_authenticated", False) else None


def _grant_changes(grant: Grant, *, created: bool) -> dict[str, Any]:
    changes: dict[str, Any] = {
        "server": {"old": None, "new": grant.server_id},
        "secret": {"old": None if created else REDACTED, "new": REDACTED},
    }
    if grant.agent_id:
        changes["agent"] = {"old": None, "new": grant.agent_id}
    if grant.expires_at is not None:
        changes["expires_at"] = {"old": None, "new": grant.expires_at.isoformat()}
    return changes


def grant_store_tokens(
    *,
    server: McpServer,
    agent: Agent | None,
    response: oauth.TokenResponse,
    granted_by: Any,
    actor: Any,
) -> Grant:
    """Store the grant a connect flow or a machine token request produced, audited."""
    with transaction.atomic():
        grant, created = Grant.objects.get_or_create(
            server=server, agent=agent, defaults={"kind": Grant.Kind.OAUTH}
        )
        grant.kind, grant.granted_by = Grant.Kind.OAUTH, _user(granted_by) or grant.granted_by
        grant.set_tokens(
            access=response.access_token, refresh=response.refresh_token,
            expires_at=response.expires_at(timezone.now()), scope=response.scope,
        )  # fmt: skip
        grant.save()
        _membership(server, agent)
        audit_event_create(
            action=AuditEvent.Action.CREATE if created else AuditEvent.Action.UPDATE,
            target=grant, actor=actor, changes=_grant_changes(grant, created=created),
        )  # fmt: skip
    return grant


def _revoke_quietly(server: McpServer, grant: Grant) -> bool:
    """Revoke an OAuth grant upstream (RFC 7009); deletion goes ahead even if that fails."""
    config = server.oauth_config
    if grant.kind != Grant.Kind.OAUTH or not config.revocation_endpoint or not config.client_id:
        return False
    tokens = [(grant.refresh_secret, "refresh_token"), (grant.secret, "access_token")]
    try:
        for sealed, hint in tokens:
            if sealed is not None:
                oauth.revoke(
                    revocation_url=config.revocation_endpoint, auth=client_auth(server),
                    token=sealed.reveal(), token_type_hint=hint,
                )  # fmt: skip
    except oauth.OAuthError as exc:
        logger.warning("Revocation at %s failed: %s", server.name, exc.code)
        return False
    return True


def _forget_one(server: McpServer, grant: Grant, actor: Any) -> bool:
    """Revoke (OAuth) and delete one grant, audited; return whether revocation succeeded."""
    revoked = _revoke_quietly(server, grant)
    with transaction.atomic():
        if revoked:
            audit_event_create(action=AuditEvent.Action.REVOKE, target=grant, actor=actor)
        audit_event_create(
            action=AuditEvent.Action.DELETE, target=grant, actor=actor,
            changes={"secret": {"old": REDACTED, "new": None}, "revoked": revoked},
        )  # fmt: skip
        Grant.objects.filter(pk=grant.pk).delete()
        if grant.agent_id is not None:
            AgentConnection.objects.filter(agent_id=grant.agent_id, server=server).delete()
    return revoked


def grants_forget(
    *, server: McpServer, actor: Any, agent: Agent | None = None, only_agent: bool = False
) -> int:
    """End grants: revoked upstream (OAuth), deleted, audited. With only_agent, exactly the
    grant of `agent` (None: the shared one); otherwise agent None ends every grant of the
    server. Returns how many were deleted."""
    grants = Grant.objects.filter(server=server)
    if only_agent or agent is not None:
        grants = grants.filter(agent=agent)
    forgotten = list(grants)
    for grant in forgotten:
        _forget_one(server, grant, actor)
    return len(forgotten)


def oauth_disconnect(*, server: McpServer, agent: Agent | None = None, actor: Any = None) -> bool:
    """Drop the grant a user asked to drop: the shared one, or `agent`'s in per_agent mode.

    Return whether the upstream revocation succeeded. Raise OAuthError invalid_request when
    mode and agent do not match, and not_connected when there is no grant to drop, so the
    caller is told instead of getting a success that revoked nothing.
    """
    per_agent = server.credential_mode == McpServer.CredentialMode.PER_AGENT
    if per_agent != (agent is not None):
        need = "an agent_id (per_agent mode)" if per_agent else "no agent_id (shared mode)"
        raise oauth.OAuthError("invalid_request", f"{server.name} needs {need}")
    grant = Grant.objects.filter(server=server, agent=agent).first()
    if grant is None:
        raise oauth.OAuthError("not_connected", f"{server.name} has no OAuth grant to drop.")
    return _forget_one(server, grant, actor)


def grant_mark_reauth(
    *, grant: Grant, reason: str, claim: str = "", unchanged_since: datetime | None = None
) -> bool:
    """Flag a grant as needing a human to reconnect, once: one audit row, however often the
    cause repeats. With `claim`, only while that refresh claim is still ours; with
    `unchanged_since`, only if no new credential was stored after it (an upstream's refusal
    of the old one says nothing about the new one)."""
    rows = Grant.objects.filter(pk=grant.pk, needs_reauth=False)
    if claim:
        rows = rows.filter(refresh_claim=claim)
    if unchanged_since is not None:
        rows = rows.filter(updated_at__lte=unchanged_since)
    with transaction.atomic():
        flagged = rows.update(
            needs_reauth=True, reauth_reason=reason[:500], refresh_claim="",
            refresh_claimed_until=None, updated_at=timezone.now(),
        )  # fmt: skip
        if flagged:
            audit_event_create(
                action=AuditEvent.Action.NEEDS_REAUTH, target=grant, changes={"reason": reason}
            )
    return bool(flagged)


def grant_reveal(*, actor: Any, grant: Grant) -> str:
    """The credential's plaintext, for the user who gave it (seed 004's GET /tokens/{id}).
    Audited first, like every secret read, so a value is never handed out unrecorded."""
    audit_event_create(action=AuditEvent.Action.SECRET_READ, target=grant, actor=actor)
    return grant.secret.reveal() if grant.secret is not None else ""
