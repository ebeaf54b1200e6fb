from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from mcpcontrol.lib.fields import TokenValueField, is_unreadable


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
    """One token a user stored in their vault (seed 004's tokens API): an OAuth access or
    refresh token or an API key, for the user's own use. Upstream credentials mcpcontrol
    itself presents are credentials.Grant rows; the API lists a user's grants beside these."""

    audit_entity = "token"

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
    # The token itself, revealed only to its owner: Fernet ciphertext, or with
    # MCPCONTROL_TOKEN_CODEC=creds-aes-cbc the CREDS_KEY/CREDS_IV format another application
    # sharing this table reads (weaker: fixed IV, no integrity; see docs/security.md).
    token = TokenValueField()
    expires_at = models.DateTimeField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TokenQuerySet.as_manager()

    class Meta:
        db_table = "tokens"  # seed 004's collection name (docs/storage.md)
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

    @property
    def is_unreadable(self) -> bool:
        """A value is stored but cannot be decrypted: written by another application in the
        shared format while the codec is off, or under a key removed too early. The API and
        admin report it on this row only."""
        return is_unreadable(self.token)
