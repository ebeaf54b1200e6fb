from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from mcpcontrol.lib.fields import EncryptedTextField


class GrantQuerySet(models.QuerySet["Grant"]):
    def shared(self) -> "GrantQuerySet":
        return self.filter(agent__isnull=True)

    def granted_by(self, user: Any) -> "GrantQuerySet":
        """The credentials `user` gave us (connected or entered): seed 004's tokens API lists
        them among the user's tokens."""
        if user is None or not user.is_authenticated:
            return self.none()
        return self.filter(granted_by=user)

    def for_needs(self, server_ids: list[int], agent_ids: list[int]) -> "GrantQuerySet":
        """The shared grants of these servers and the agents' own: one query for a batch."""
        return self.filter(server_id__in=server_ids).filter(
            Q(agent__isnull=True) | Q(agent_id__in=agent_ids)
        )

    def refreshable(self) -> "GrantQuerySet":
        """OAuth grants a refresh can renew: a refresh token, or a machine (client credentials)
        grant, which simply asks again."""
        return self.filter(kind=Grant.Kind.OAUTH, needs_reauth=False).filter(
            Q(refresh_secret__isnull=False) | Q(server__oauth__grant_type="client_credentials")
        )

    def due(self, *, now: datetime, margin: Any) -> "GrantQuerySet":
        """Expiring within `margin`, out of any backoff, and not claimed by a live worker."""
        return self.refreshable().unclaimed_due(now=now, margin=margin)

    def unclaimed_due(self, *, now: datetime, margin: Any) -> "GrantQuerySet":
        """`due`'s conditions on the grant's own fields (no join): what a claim's conditional
        update re-checks (MongoDB updates one collection only, docs/storage.md)."""
        return self.filter(
            Q(refresh_not_before__isnull=True) | Q(refresh_not_before__lte=now),
            Q(refresh_claimed_until__isnull=True) | Q(refresh_claimed_until__lt=now),
            expires_at__lt=now + margin,
            needs_reauth=False,
        )


class Grant(models.Model):
    """One credential one principal presents to one upstream server: the server's shared
    credential (agent null) or one agent's own (per_agent mode). API key, bearer token or
    OAuth grant; every secret is Fernet ciphertext and leaves this row only through
    credentials.services.resolve."""

    audit_entity = "grant"

    class Kind(models.TextChoices):
        API_KEY = "api_key"
        BEARER = "bearer"
        OAUTH = "oauth"

    server = models.ForeignKey("servers.McpServer", on_delete=models.CASCADE, related_name="grants")
    agent = models.ForeignKey(
        "servers.Agent", null=True, blank=True, on_delete=models.CASCADE, related_name="grants"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    # The API key, bearer token or OAuth access token. May be a secret reference
    # (env:NAME, file:/path, ...) resolved at use, never stored resolved.
    secret = EncryptedTextField()
    # The OAuth refresh token. Kept until a new one is stored: a refresh that timed out may
    # still be retried with it (RFC 6749 6) unless the server rotated it meanwhile.
    refresh_secret = EncryptedTextField()
    scope = models.CharField(max_length=1000, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    needs_reauth = models.BooleanField(default=False)
    reauth_reason = models.CharField(max_length=500, blank=True)
    # Who connected it (the OAuth consent was theirs); seed 004's tokens API lists it for them.
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="mcp_grants",
    )  # fmt: skip
    # Refresh lease: a conditional UPDATE sets both; whoever set them refreshes. A lease
    # lapses by itself at refresh_claimed_until, so a dead worker never strands a grant.
    refresh_claim = models.CharField(max_length=32, blank=True)
    refresh_claimed_until = models.DateTimeField(null=True, blank=True)
    # Backoff after failures: no attempt before refresh_not_before, from any path (beat,
    # health sweep, client config), so a failing authorization server meets no storm.
    refresh_failures = models.PositiveIntegerField(default=0)
    refresh_not_before = models.DateTimeField(null=True, blank=True)
    # The last attempt got no answer: the server may have rotated the refresh token.
    refresh_uncertain = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = GrantQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=("server",), condition=Q(agent__isnull=True), name="grant_one_shared"
            ),
            models.UniqueConstraint(
                fields=("server", "agent"),
                condition=Q(agent__isnull=False),
                name="grant_one_per_agent",
            ),
        ]
        indexes = [models.Index(fields=("kind", "expires_at"))]

    def __str__(self) -> str:
        whose = f"agent {self.agent_id}" if self.agent_id else "shared"
        return f"{self.kind} grant for server {self.server_id} ({whose})"

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    def set_tokens(
        self, *, access: str, refresh: str | None, expires_at: datetime | None, scope: str = ""
    ) -> None:
        """A new OAuth grant: both secrets and the expiry together, and the failure state gone.
        An absent refresh token keeps the old one (RFC 6749 section 6)."""
        self.secret = access
        if refresh:
            self.refresh_secret = refresh
        self.expires_at = expires_at
        self.scope = scope or self.scope
        self.needs_reauth, self.reauth_reason = False, ""
        self.refresh_failures, self.refresh_not_before, self.refresh_uncertain = 0, None, False
        self.refresh_claim, self.refresh_claimed_until = "", None


class VariableValue(models.Model):
    """The value one user (for all their agents) or one agent gives one of a server's
    custom_user_vars. A secret: ciphertext, substituted into ${NAME} only when the server is
    reached (client config, health check, gateway), never shown back."""

    audit_entity = "variable"

    server = models.ForeignKey(
        "servers.McpServer", on_delete=models.CASCADE, related_name="variable_values"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    agent = models.ForeignKey(
        "servers.Agent", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    name = models.CharField(max_length=100)
    value = EncryptedTextField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                name="variable_user_or_agent",
                condition=Q(user__isnull=True, agent__isnull=False)
                | Q(user__isnull=False, agent__isnull=True),
            ),
            models.UniqueConstraint(
                fields=("server", "user", "name"),
                condition=Q(agent__isnull=True),
                name="variable_unique_per_user",
            ),
            models.UniqueConstraint(
                fields=("server", "agent", "name"),
                condition=Q(user__isnull=True),
                name="variable_unique_per_agent",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} for server {self.server_id}"


class OAuthState(models.Model):
    """One pending authorization-code flow: the `state` we sent and the PKCE verifier to
    finish it with. Single use, short-lived, bound to the user, server and agent."""

    # Only an HMAC of the state is stored: a database read must not let anyone finish a
    # flow someone else started (the state is a bearer secret until the callback).
    state_hash = models.CharField(max_length=64, unique=True)
    # The PKCE verifier proves we started the flow; encrypted like every replayable secret.
    code_verifier = EncryptedTextField()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="oauth_states"
    )
    server = models.ForeignKey(
        "servers.McpServer", on_delete=models.CASCADE, related_name="oauth_states"
    )
    # Set in per_agent mode: the grant goes to this agent.
    agent = models.ForeignKey(
        "servers.Agent", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    redirect_uri = models.CharField(max_length=2000)
    resource = models.CharField(max_length=2000, blank=True)
    # Where the browser goes after a successful callback (the page that started it).
    return_url = models.CharField(max_length=2000, blank=True)
    expires_at = models.DateTimeField()
    # Set by the conditional update that consumes the state: a replay finds it set.
    used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=("expires_at",))]

    def __str__(self) -> str:
        return f"oauth state for {self.server_id} ({self.state_hash[:8]})"
