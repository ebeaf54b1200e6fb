"""Agents, and their membership of servers."""

from typing import Any

from django.conf import settings
from django.db import models

from servers.models.server import McpServer


class AgentQuerySet(models.QuerySet["Agent"]):
    def for_user(self, user: Any) -> "AgentQuerySet":
        if user is None or not user.is_authenticated:
            return self.none()
        if user.is_superuser:  # staff status alone grants nothing
            return self
        return self.filter(owner=user)


class Agent(models.Model):
    """An AI agent identity: it is handed a client config and may hold credentials of its own."""

    class ConfigMode(models.TextChoices):
        DIRECT = "direct", "direct: one entry per upstream, with its credentials"
        GATEWAY = "gateway", "gateway: one entry, the agent's gateway endpoint and key"

    name = models.CharField(max_length=200)
    # What mcp-config hands out when the caller names no mode (docs/gateway.md). New agents
    # use the gateway, so no upstream secret reaches the agent's machine unless an operator
    # chooses direct; agents that existed before the gateway keep direct (migration 0009).
    config_mode = models.CharField(
        max_length=16, choices=ConfigMode.choices, default=ConfigMode.GATEWAY
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mcp_agents"
    )
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = AgentQuerySet.as_manager()

    class Meta:
        ordering = ("name",)
        constraints = [
            models.UniqueConstraint(fields=("owner", "name"), name="agent_name_unique_per_owner")
        ]

    def __str__(self) -> str:
        return self.name


class AgentConnection(models.Model):
    """One agent's membership of one server (per_agent mode): it exists while the agent has
    its own credential there (a credentials.Grant row with this agent and server)."""

    audit_entity = "connection"

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="connections")
    server = models.ForeignKey(McpServer, on_delete=models.CASCADE, related_name="connections")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=("agent", "server"), name="connection_unique_per_agent")
        ]

    def __str__(self) -> str:
        return f"{self.agent} → {self.server}"
