"""Where an upstream OAuth grant is stored, and how a new grant is written and mirrored.

Grants live in one of two slots: the server's shared oauth_* fields, or an AgentConnection
(per_agent mode). The protocol itself is in tokens.oauth; these modules store and audit.
The underscored names here are shared by the oauth_* modules of this package only; other
apps call the services re-exported by tokens.services.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_event_create
from mcpcontrol.lib.fields import reveal
from servers.models import AgentConnection, McpServer
from tokens import oauth
from tokens.models import Token


@dataclass(frozen=True)
class _Slot:
    """Field names of one place a grant is stored, so the claim logic is written once."""

    model: type[McpServer] | type[AgentConnection]
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


def _client_credentials_grant(server: McpServer) -> oauth.Grant:
    # Here, not in oauth_connect, because a refresh of a machine grant simply asks again.
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
    with transaction.atomic():
        row = _slot_write(server=server, connection=connection, grant=grant, expires_at=expires_at)
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


def _slot_write(
    *,
    server: McpServer,
    connection: AgentConnection | None,
    grant: oauth.Grant,
    expires_at: datetime | None,
) -> McpServer | AgentConnection:
    """Set the grant on its slot, drop the refresh lease, save; return the saved row."""
    row: McpServer | AgentConnection
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
    return row


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
        access.token = grant.access_token
        access.expires_at = expires_at
        access.save(update_fields=["token", "expires_at", "updated_at"])
    if grant.refresh_token:  # an absent refresh token keeps the old one (RFC 6749 section 6)
        for refresh in rows.filter(type=Token.Type.OAUTH_REFRESH):
            refresh.token = grant.refresh_token
            refresh.save(update_fields=["token", "updated_at"])
