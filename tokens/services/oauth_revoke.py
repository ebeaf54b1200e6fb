"""Ending upstream OAuth grants: delete and revoke one (RFC 7009), disconnect one on request,
clean up expired Token rows."""

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_event_create
from servers.models import Agent, AgentConnection, McpServer
from tokens import oauth
from tokens.models import Token
from tokens.services.oauth_grants import _CONNECTION, _SERVER, _client_auth, _token_rows

logger = logging.getLogger(__name__)


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
) -> bool:
    """Delete a grant (shared or one agent's): revoke it upstream, clear it, drop Token rows.

    Return whether the upstream revocation succeeded; the grant is deleted either way.
    """
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
    return revoked


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
    connection = (
        AgentConnection.objects.filter(agent=agent, server=server).first() if per_agent else None
    )
    slot, row = (_CONNECTION, connection) if per_agent else (_SERVER, server)
    if row is None or (getattr(row, slot.access) is None and getattr(row, slot.refresh) is None):
        raise oauth.OAuthError("not_connected", f"{server.name} has no OAuth grant to drop.")
    return oauth_credential_delete(server=server, connection=connection, actor=actor)


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
