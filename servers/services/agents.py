"""Agents and their per-server credentials, audited without the secrets."""

from datetime import datetime
from typing import Any

from django.db import transaction

from audit.models import AuditEvent
from audit.services import audit_event_create, redacted_changes
from servers.credential_port import credentials
from servers.models import Agent, AgentConnection, McpServer


def agent_create(
    *, actor: Any, owner: Any, name: str, description: str = "",
    config_mode: str = Agent.ConfigMode.GATEWAY,
) -> Agent:  # fmt: skip
    agent = Agent(owner=owner, name=name, description=description, config_mode=config_mode)
    agent.full_clean()
    with transaction.atomic():
        agent.save()
        audit_event_create(
            action=AuditEvent.Action.CREATE, target=agent, actor=actor,
            changes={
                "name": {"old": None, "new": name}, "owner": {"old": None, "new": owner.pk},
                "config_mode": {"old": None, "new": str(config_mode)},
            },
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
    for connection in agent.connections.select_related("server"):
        connection_delete(actor=actor, connection=connection)  # revokes OAuth grants upstream
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
    """Store (or replace) an agent's own credential for a server, making it a member."""
    with transaction.atomic():
        credentials().store_secret(
            server=server, agent=agent, secret=access_token, actor=actor, refresh=refresh_token,
            expires_at=expires_at,
        )  # fmt: skip
        connection, _ = AgentConnection.objects.get_or_create(agent=agent, server=server)
    return connection


def connection_delete(*, actor: Any, connection: AgentConnection) -> None:
    """End an agent's own credential for a server (revoked upstream for OAuth) and membership."""
    credentials().forget(server=connection.server, agent=connection.agent, actor=actor)
    with transaction.atomic():
        audit_event_create(
            action=AuditEvent.Action.DELETE, target=connection, actor=actor,
            changes={"agent": {"old": connection.agent_id, "new": None},
                     "server": {"old": connection.server_id, "new": None}},
        )  # fmt: skip
        AgentConnection.objects.filter(pk=connection.pk).delete()
