"""The gateway's rows: agents' API keys, their tool policy, and the tool-call trail."""

import hashlib
import hmac
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from servers.models import Agent, McpServer

KEY_PREFIX = "mcpa_"
# Characters of the key after "mcpa_" that are stored in plain text to find the row.
LOOKUP_CHARS = 8


def key_digest(raw: str) -> str:
    """HMAC-SHA256 of a raw key under TOKEN_PEPPER: a stolen table without the pepper
    cannot even confirm a guessed key (the keys carry 256 bits, so no slow hash is needed)."""
    pepper = str(settings.TOKEN_PEPPER).encode()
    return hmac.new(pepper, raw.encode(), hashlib.sha256).hexdigest()


class AgentKeyQuerySet(models.QuerySet["AgentKey"]):
    def for_user(self, user: Any) -> "AgentKeyQuerySet":
        if user is None or not user.is_authenticated:
            return self.none()
        if user.is_superuser:
            return self
        return self.filter(agent__owner=user)

    def usable(self) -> "AgentKeyQuerySet":
        now = timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )


class AgentKey(models.Model):
    """One API key an agent presents to the gateway (`Authorization: Bearer mcpa_...`)."""

    audit_entity = "agent_key"

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="gateway_keys")
    name = models.CharField(max_length=100)
    # The first LOOKUP_CHARS random characters: finds the row; on its own it grants nothing.
    prefix = models.CharField(max_length=16, unique=True)
    # Security: only the HMAC digest is stored; the raw key is shown once, at creation.
    digest = models.CharField(max_length=64)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = AgentKeyQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at", "-id")

    def __str__(self) -> str:
        return f"{KEY_PREFIX}{self.prefix}… ({self.name})"

    @property
    def state(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= timezone.now():
            return "expired"
        return "active"


class AgentPolicy(models.Model):
    """One agent's gateway settings: the tool naming it sees and its allow/deny globs."""

    audit_entity = "agent_policy"

    class Naming(models.TextChoices):
        MCP = "mcp", "mcp__<server_key>__<tool> (seed 003)"
        ALIAS = "alias", "<alias>_<tool> (seed 000)"

    agent = models.OneToOneField(Agent, on_delete=models.CASCADE, related_name="gateway_policy")
    naming = models.CharField(max_length=8, choices=Naming.choices, default=Naming.MCP)
    # fnmatch globs on the names the agent sees; empty allow means every tool.
    allow = models.JSONField(default=list, blank=True)
    deny = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"policy of {self.agent}"


class ToolCall(models.Model):
    """One tools/call through the gateway. Arguments are never stored: only their size."""

    class Outcome(models.TextChoices):
        OK = "ok"
        TOOL_ERROR = "tool_error"  # the upstream answered isError
        DENIED = "denied"
        UNKNOWN_TOOL = "unknown_tool"
        AUTH_REQUIRED = "auth_required"
        TIMEOUT = "timeout"
        UPSTREAM_ERROR = "upstream_error"

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="tool_calls")
    server = models.ForeignKey(
        McpServer, null=True, blank=True, on_delete=models.SET_NULL, related_name="tool_calls"
    )
    tool = models.CharField(max_length=255)
    duration_ms = models.PositiveIntegerField()
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    argument_bytes = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ("-created_at", "-id")

    def __str__(self) -> str:
        return f"{self.tool}: {self.outcome}"
