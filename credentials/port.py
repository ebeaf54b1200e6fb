"""The credentials side of servers.credential_port: what servers may ask of credentials."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db.models import DateTimeField, IntegerField, Q, Subquery

from credentials import services
from credentials.models import Grant, VariableValue
from mcpcontrol.lib.queries import scalar_aggregate
from servers.credential_port import CredentialState, Need, Resolved
from servers.models import Agent, McpServer


class Port:
    """Installed at start-up (CredentialsConfig.ready); each method is one service call."""

    def resolve(self, *, needs: Sequence[Need]) -> dict[int, Resolved]:
        return services.resolve(needs=needs)

    def refresh_due(self, *, needs: Sequence[Need], budget: float) -> None:
        services.grants_refresh_for(needs=needs, budget=budget)

    def state(self, *, server: McpServer, agent: Agent | None = None) -> CredentialState:
        grant = Grant.objects.filter(server=server, agent=agent).first()
        if grant is None:
            return CredentialState()
        return CredentialState(
            kind=grant.kind, has_secret=grant.secret is not None,
            has_refresh=grant.refresh_secret is not None, expires_at=grant.expires_at,
            needs_reauth=grant.needs_reauth, reason=grant.reauth_reason,
        )  # fmt: skip

    def store_secret(
        self,
        *,
        server: McpServer,
        agent: Agent | None,
        secret: str | None,
        actor: Any,
        refresh: str | None = None,
        expires_at: datetime | None = None,
    ) -> None:
        services.grant_set_secret(
            server=server, agent=agent, secret=secret, actor=actor, refresh=refresh,
            expires_at=expires_at,
        )  # fmt: skip

    def check_secret(self, *, server: McpServer, secret: str | None) -> None:
        services.grant_check_secret(server=server, secret=secret)

    def forget(self, *, server: McpServer, actor: Any, agent: Agent | None = None) -> None:
        services.grants_forget(server=server, agent=agent, actor=actor)

    def version_expressions(self, *, agent: Agent, server_ids: Any) -> dict[str, Any]:
        grants = Grant.objects.filter(Q(agent=agent) | Q(agent__isnull=True),
                                      server__in=server_ids)  # fmt: skip
        variables = VariableValue.objects.filter(Q(agent=agent) | Q(user_id=agent.owner_id),
                                                 server__in=server_ids)  # fmt: skip
        soonest = grants.filter(expires_at__isnull=False).order_by("expires_at")
        stamp, count = DateTimeField(), IntegerField()
        return {
            "grants": scalar_aggregate(grants, "COUNT", "pk", count),
            "grants_at": scalar_aggregate(grants, "MAX", "updated_at", stamp),
            "expires": Subquery(soonest.values("expires_at")[:1]),
            "variables": scalar_aggregate(variables, "COUNT", "pk", count),
            "variables_at": scalar_aggregate(variables, "MAX", "updated_at", stamp),
        }

    def mark_reauth(
        self, *, server: McpServer, agent: Agent | None, reason: str, unchanged_since: datetime
    ) -> bool:
        per_agent = server.credential_mode == McpServer.CredentialMode.PER_AGENT
        if per_agent and agent is None:
            return False
        grant = Grant.objects.filter(server=server, agent=server.grant_agent(agent)).first()
        if grant is None:
            return False
        return services.grant_mark_reauth(
            grant=grant, reason=reason, unchanged_since=unchanged_since
        )
