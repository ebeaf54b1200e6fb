from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from mcpcontrol.lib.fields import EncryptedTextField


class TokenQuerySet(models.QuerySet["Token"]):
    def for_user(self, user: Any) -> "TokenQuerySet":
        """A user's tokens are theirs alone: not even admins read them through the API."""
        if user is None or not user.is_authenticated:
            return self.none()
        return self.filter(user=user)

    def live(self) -> "TokenQuerySet":
        return self.filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=timezone.now())
        )

    def expired(self) -> "TokenQuerySet":
        return self.filter(expires_at__lte=timezone.now())


class Token(models.Model):
    """One token a user stored: an upstream OAuth access/refresh token or an API key."""

    class Type(models.TextChoices):
        OAUTH_ACCESS = "oauth_access"
        OAUTH_REFRESH = "oauth_refresh"
        API_KEY = "api_key"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tokens"
    )
    email = models.EmailField(blank=True)
    type = models.CharField(max_length=20, choices=Type.choices)
    identifier = models.CharField(max_length=255)
    # The token itself: Fernet ciphertext, revealed only to its owner.
    token = EncryptedTextField()
    expires_at = models.DateTimeField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TokenQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [
            models.Index(fields=("user", "type")),
            models.Index(fields=("user", "identifier")),
            models.Index(fields=("type", "identifier")),
            models.Index(fields=("expires_at",)),
        ]

    def __str__(self) -> str:
        return f"{self.type}:{self.identifier}"

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()


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
    # Set in per_agent mode: the grant goes to this agent's AgentConnection.
    agent = models.ForeignKey(
        "servers.Agent", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    redirect_uri = models.CharField(max_length=2000)
    resource = models.CharField(max_length=2000, blank=True)
    # Where the browser goes after a successful callback (the admin page that started it).
    return_url = models.CharField(max_length=2000, blank=True)
    expires_at = models.DateTimeField()
    # Set by the conditional update that consumes the state: a replay finds it set.
    used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=("expires_at",))]

    def __str__(self) -> str:
        return f"oauth state for {self.server_id} ({self.state_hash[:8]})"
