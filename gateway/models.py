"""The gateway's rows: agents' API keys, their tool policy, and the tool-call trail."""

import hashlib
import hmac
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
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
    # tools/call per minute; null: MCPCONTROL_GATEWAY_RATE_LIMIT applies; 0: no limit.
    rate_limit_per_minute = models.PositiveIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"policy of {self.agent}"


class GroupPolicyQuerySet(models.QuerySet["GroupPolicy"]):
    def for_user(self, user: Any) -> "GroupPolicyQuerySet":
        """Group policies are an administrator's: seen with gateway.view_grouppolicy (the
        superuser holds every permission), by nobody else (their rules are no secret, but
        listing them would list the groups)."""
        if user is None or not user.is_authenticated:
            return self.none()
        return self if user.has_perm("gateway.view_grouppolicy") else self.none()

    def of_user(self, user_id: int) -> "GroupPolicyQuerySet":
        """The policies of every group the user is in: they apply to all of the user's agents."""
        return self.filter(group__user__id=user_id)


class GroupPolicy(models.Model):
    """One auth Group's tool allow/deny globs, applied to every agent whose owner is in the
    group, on top of the agent's own policy (docs/gateway.md, "Policy": a filter each)."""

    audit_entity = "group_policy"

    group = models.OneToOneField(Group, on_delete=models.CASCADE, related_name="gateway_policy")
    allow = models.JSONField(default=list, blank=True)  # empty: this group restricts nothing
    deny = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = GroupPolicyQuerySet.as_manager()

    class Meta:
        ordering = ("id",)

    def __str__(self) -> str:
        return f"gateway policy of group {self.group}"


class ToolCall(models.Model):
    """One tools/call through the gateway. Arguments are stored only when
    MCPCONTROL_GATEWAY_CAPTURE_ARGUMENTS is on, redacted (gateway.services.capture)."""

    class Outcome(models.TextChoices):
        OK = "ok"
        TOOL_ERROR = "tool_error"  # the upstream answered isError
        DENIED = "denied"
        UNKNOWN_TOOL = "unknown_tool"
        AUTH_REQUIRED = "auth_required"
        TIMEOUT = "timeout"
        UPSTREAM_ERROR = "upstream_error"
        RATE_LIMITED = "rate_limited"

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="tool_calls")
    server = models.ForeignKey(
        McpServer, null=True, blank=True, on_delete=models.SET_NULL, related_name="tool_calls"
    )
    tool = models.CharField(max_length=255)
    duration_ms = models.PositiveIntegerField()
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    argument_bytes = models.PositiveIntegerField(default=0)
    # Security: only ever written redacted (secret-looking keys, the call's credential values).
    arguments = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ("-created_at", "-id")

    def __str__(self) -> str:
        return f"{self.tool}: {self.outcome}"
