"""Agents and their per-server credentials (AgentConnection), audited without the secrets."""

from datetime import datetime
from typing import Any

from django.db import transaction

from audit.models import AuditEvent
from audit.services import audit_event_create, redacted_changes
from servers.models import Agent, AgentConnection, McpServer


def agent_create(*, actor: Any, owner: Any, name: str, description: str = "") -> Agent:
    agent = Agent(owner=owner, name=name, description=description)
    agent.full_clean()
    with transaction.atomic():
        agent.save()
        audit_event_create(
            action=AuditEvent.Action.CREATE, target=agent, actor=actor,
            changes={"name": {"old": None, "new": name}, "owner": {"old": None, "new": owner.pk}},
        )  # fmt: skip
    return agent


def agent_update(*, actor: Any, agent: Agent, changes: dict[str, Any]) -> Agent:
    before = {name: getattr(agent, name) for name in changes}
    for name, value in changes.items():
        setattr(agent, name, value)
    agent.full_clean()
    with transaction.atomic():
        agent.save(update_fields=[*changes, "updated_at"])
        audit_event_create(
            action=AuditEvent.Action.UPDATE, target=agent, actor=actor,
            changes=redacted_changes(old=before, new=changes),
        )  # fmt: skip
    return agent


def agent_delete(*, actor: Any, agent: Agent) -> None:
    with transaction.atomic():
        audit_event_create(action=AuditEvent.Action.DELETE, target=agent, actor=actor)
        agent.delete()


def connection_set(
    *,
    actor: Any,
    agent: Agent,
    server: McpServer,
    access_token: str,
    refresh_token: str | None = None,
    expires_at: datetime | None = None,
) -> AgentConnection:
    """Store (or replace) an agent's credential for a server. The secrets are sealed at once."""
    with transaction.atomic():
        connection, created = AgentConnection.objects.get_or_create(agent=agent, server=server)
        connection.set_grant(
            access_token=access_token, refresh_token=refresh_token, expires_at=expires_at
        )
        if refresh_token is None and created:
            connection.refresh_token = None
        connection.save()
        audit_event_create(
            action=AuditEvent.Action.CREATE if created else AuditEvent.Action.UPDATE,
            target=connection, actor=actor,
            changes={
                "agent": {"old": None, "new": agent.pk}, "server": {"old": None, "new": server.pk},
                "access_token": {"old": None if created else "[redacted]", "new": "[redacted]"},
                "expires_at": {"old": None, "new": expires_at.isoformat() if expires_at else None},
            },
        )  # fmt: skip
    return connection


def connection_delete(*, actor: Any, connection: AgentConnection) -> None:
    if connection.server.auth_type == McpServer.AuthType.OAUTH:
        from tokens.services import oauth_credential_delete  # revokes upstream, drops Token rows

        oauth_credential_delete(server=connection.server, connection=connection, actor=actor)
    with transaction.atomic():
        audit_event_create(
            action=AuditEvent.Action.DELETE, target=connection, actor=actor,
            changes={"agent": {"old": connection.agent_id, "new": None},
                     "server": {"old": connection.server_id, "new": None}},
        )  # fmt: skip
        connection.delete()
