import re
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q

from mcpcontrol.lib.fields import EncryptedJSONField, EncryptedTextField, Sealed

ALIAS_RE = r"^[a-z0-9][a-z0-9_-]*$"
alias_validator = RegexValidator(
    ALIAS_RE,
    "Alias must be lower-case letters, digits, '_' or '-', starting with a letter or digit.",
)


def sanitize_name(name: str) -> str:
    """The lower-cased name with every character outside [a-z0-9] replaced by '_'."""
    return re.sub(r"[^a-z0-9]", "_", name.lower())


def default_alias(name: str) -> str:
    return re.sub(r"_+", "_", sanitize_name(name)).strip("_") or "server"


class McpServerQuerySet(models.QuerySet["McpServer"]):
    def for_user(self, user: Any) -> "McpServerQuerySet":
        """What `user` may see: the only place the admin bypass lives.

        Admins see everything; a user sees app-wide and user-shared servers, the servers of
        their groups, and their own private servers.
        """
        if user is None or not user.is_authenticated:
            return self.none()
        if user.is_superuser or user.is_staff:
            return self
        # group is a foreign key, so `group__in` is an IN (subquery), not a join: no row can
        # repeat, and no DISTINCT is needed (it made every user's list and count slower).
        return self.filter(
            Q(scope__in=(McpServer.Scope.SHARED_APP, McpServer.Scope.SHARED_USER))
            | Q(group__in=user.groups.all())
            | Q(owner=user)
        )

    def enabled(self) -> "McpServerQuerySet":
        return self.filter(is_enabled=True)


class McpServer(models.Model):
    """One managed MCP server: how to reach it, how to authenticate, who may use it, and what
    the health engine last learned from it."""

    class Transport(models.TextChoices):
        STDIO = "stdio"
        SSE = "sse"
        STREAMABLE_HTTP = "streamable-http"
        WEBSOCKET = "websocket"

    class AuthType(models.TextChoices):
        NONE = "none"
        API_KEY = "api_key"
        BEARER = "bearer"
        OAUTH = "oauth"

    class CredentialMode(models.TextChoices):
        SHARED = "shared"
        PER_AGENT = "per_agent"

    class Scope(models.TextChoices):
        SHARED_APP = "shared_app"
        SHARED_USER = "shared_user"
        PRIVATE_USER = "private_user"

    class Status(models.TextChoices):
        ACTIVE = "active"
        INACTIVE = "inactive"
        ERROR = "error"

    class Stderr(models.TextChoices):
        CAPTURE = "capture"
        IGNORE = "ignore"

    class OAuthGrant(models.TextChoices):
        AUTHORIZATION_CODE = "authorization_code"
        CLIENT_CREDENTIALS = "client_credentials"

    REMOTE_SCHEMES: dict[str, tuple[str, ...]] = {
        Transport.SSE: ("http", "https"),
        Transport.STREAMABLE_HTTP: ("http", "https"),
        Transport.WEBSOCKET: ("ws", "wss"),
    }
    # Maps whose keys may be shown but whose values are secrets.
    SECRET_MAP_FIELDS = ("env", "headers")
    SECRET_FIELDS = (
        "auth_secret",
        "oauth_client_id",
        "oauth_client_secret",
        "oauth_access_token",
        "oauth_refresh_token",
    )

    # identity
    name = models.CharField(max_length=200, unique=True)
    alias = models.CharField(max_length=64, unique=True, validators=[alias_validator])
    description = models.TextField(blank=True)
    tags = models.JSONField(default=list, blank=True)
    path = models.CharField(max_length=200, blank=True)
    icon_path = models.CharField(max_length=500, blank=True)

    # transport
    transport_type = models.CharField(
        max_length=20, choices=Transport.choices, default=Transport.STREAMABLE_HTTP
    )
    url = models.CharField(max_length=2000, blank=True)
    command = models.CharField(max_length=500, blank=True)
    args = models.JSONField(default=list, blank=True)
    cwd = models.CharField(max_length=500, blank=True)
    # Operators put credentials in env (GITHUB_PERSONAL_ACCESS_TOKEN=...) and headers
    # (X-Api-Key), so every value is a secret: Fernet ciphertext at rest, and API, admin,
    # audit and export show the names only. Names are not secret.
    env = EncryptedJSONField()
    headers = EncryptedJSONField()
    stderr = models.CharField(max_length=10, choices=Stderr.choices, default=Stderr.IGNORE)

    # upstream auth
    auth_type = models.CharField(max_length=10, choices=AuthType.choices, default=AuthType.NONE)
    header_name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=50, blank=True)
    # The shared bearer token or API key: Fernet ciphertext, never shown back.
    auth_secret = EncryptedTextField()
    credential_mode = models.CharField(
        max_length=10, choices=CredentialMode.choices, default=CredentialMode.SHARED
    )
    # In per_agent mode the health check borrows this agent's credential.
    probe_agent = models.ForeignKey(
        "servers.Agent", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    # OAuth 2.1 settings and discovered metadata
    oauth_grant_type = models.CharField(
        max_length=20, choices=OAuthGrant.choices, default=OAuthGrant.AUTHORIZATION_CODE
    )
    oauth_issuer = models.CharField(max_length=2000, blank=True)
    oauth_authorization_url = models.CharField(max_length=2000, blank=True)
    oauth_token_url = models.CharField(max_length=2000, blank=True)
    oauth_registration_url = models.CharField(max_length=2000, blank=True)
    oauth_revocation_url = models.CharField(max_length=2000, blank=True)
    oauth_scopes = models.CharField(max_length=1000, blank=True)
    oauth_redirect_uri = models.CharField(max_length=2000, blank=True)
    # Client credentials are secrets too: a leaked client id eases phishing of the consent.
    oauth_client_id = EncryptedTextField()
    oauth_client_secret = EncryptedTextField()
    oauth_metadata = models.JSONField(default=dict, blank=True)
    oauth_token_endpoint_auth_method = models.CharField(max_length=50, blank=True)
    oauth_pkce_methods = models.JSONField(default=list, blank=True)
    # Shared-mode grant; per-agent grants live on AgentConnection.
    oauth_access_token = EncryptedTextField()
    oauth_refresh_token = EncryptedTextField()
    oauth_expires_at = models.DateTimeField(null=True, blank=True)
    # Refresh lease: a conditional update sets it; whoever sets it refreshes.
    oauth_refresh_claimed_at = models.DateTimeField(null=True, blank=True)
    oauth_needs_reauth = models.BooleanField(default=False)

    # access
    scope = models.CharField(max_length=20, choices=Scope.choices, default=Scope.SHARED_APP)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="mcp_servers",
    )
    group = models.ForeignKey(
        Group, null=True, blank=True, on_delete=models.SET_NULL, related_name="mcp_servers"
    )

    # options
    is_enabled = models.BooleanField(default=True)
    startup = models.BooleanField(default=True)
    timeout_ms = models.PositiveIntegerField(default=30000)
    init_timeout_ms = models.PositiveIntegerField(default=60000)
    chat_menu = models.BooleanField(default=True)
    server_instructions = models.TextField(blank=True)
    custom_user_vars = models.JSONField(default=dict, blank=True)
    mcp_options = models.JSONField(default=dict, blank=True)

    # runtime, written by the health engine on meaningful events only
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.INACTIVE)
    tools = models.JSONField(default=list, blank=True)
    capabilities = models.JSONField(default=dict, blank=True)
    protocol_version = models.CharField(max_length=20, blank=True)
    tools_last_synced_at = models.DateTimeField(null=True, blank=True)
    init_duration_ms = models.PositiveIntegerField(null=True, blank=True)
    last_connected_at = models.DateTimeField(null=True, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    error_message = models.TextField(blank=True)
    response_time_ms = models.PositiveIntegerField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    # Check lease: one health check of a server at a time, across workers.
    check_claimed_at = models.DateTimeField(null=True, blank=True)

    version = models.PositiveIntegerField(default=1)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = McpServerQuerySet.as_manager()

    class Meta:
        ordering = ("name",)
        verbose_name = "MCP server"
        indexes = [
            models.Index(fields=("scope", "status")),
            models.Index(fields=("is_enabled", "check_claimed_at")),
            models.Index(fields=("oauth_expires_at",)),
        ]
        constraints = [
            models.CheckConstraint(
                name="server_owner_matches_scope",
                condition=Q(scope="shared_app") | Q(owner__isnull=False),
            ),
            models.CheckConstraint(name="server_version_positive", condition=Q(version__gte=1)),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def server_key(self) -> str:
        return sanitize_name(self.name)

    @property
    def is_remote(self) -> bool:
        return self.transport_type != self.Transport.STDIO

    @property
    def num_tools(self) -> int:
        return len(self.tools or [])

    def clean(self) -> None:
        errors: dict[str, str] = {}
        self._clean_transport(errors)
        self._clean_auth(errors)
        self._clean_access(errors)
        for field in ("tags", "args"):
            value = getattr(self, field)
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                errors[field] = f"{field} must be a list of strings."
        for field in ("env", "headers"):
            value = getattr(self, field)
            if not isinstance(value, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in value.items()
            ):
                errors[field] = f"{field} must be an object of string values."
        if self.path and not self.path.startswith("/"):
            errors["path"] = "Path must start with '/'."
        if errors:
            raise ValidationError(errors)

    def _clean_transport(self, errors: dict[str, str]) -> None:
        if self.transport_type == self.Transport.STDIO:
            if not self.command.strip():
                errors["command"] = "A stdio server needs a command."
            return
        schemes = self.REMOTE_SCHEMES.get(self.transport_type)
        if schemes is None:
            errors["transport_type"] = f"Unknown transport {self.transport_type!r}."
            return
        parts = urlsplit(self.url or "")
        if not self.url:
            errors["url"] = f"A {self.transport_type} server needs a URL."
        elif parts.scheme not in schemes or not parts.hostname:
            errors["url"] = (
                f"A {self.transport_type} URL must start with "
                f"{' or '.join(s + '://' for s in schemes)} and name a host."
            )

    def _clean_auth(self, errors: dict[str, str]) -> None:
        if self.auth_type == self.AuthType.API_KEY and not self.header_name.strip():
            errors["header_name"] = "An api_key server needs the name of the header to send."
        if self.header_name and not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+", self.header_name):
            errors["header_name"] = "Header name may contain only HTTP token characters."
        if (
            self.credential_mode == self.CredentialMode.PER_AGENT
            and self.auth_type == self.AuthType.NONE
        ):
            errors["credential_mode"] = "per_agent mode needs an auth type other than none."

    def _clean_access(self, errors: dict[str, str]) -> None:
        if self.scope == self.Scope.SHARED_APP and self.owner_id is not None:
            errors["owner"] = "An app-wide (shared_app) server has no owner."
        if self.scope != self.Scope.SHARED_APP and self.owner_id is None:
            errors["owner"] = f"A {self.scope} server needs an owner."

    def set_oauth_grant(
        self, *, access_token: str, refresh_token: str | None, expires_at: Any
    ) -> None:
        """Store a shared-mode grant. An absent refresh token keeps the old one (RFC 6749 6)."""
        self.oauth_access_token = access_token
        if refresh_token:
            self.oauth_refresh_token = refresh_token
        self.oauth_expires_at = expires_at
        self.oauth_needs_reauth = False

    def has_secret(self, field: str) -> bool:
        return isinstance(getattr(self, field), Sealed)

    def with_stored_values(
        self, field: str, incoming: dict[str, str], *, placeholder: str
    ) -> dict[str, str]:
        """`incoming` for env or headers, where a value equal to `placeholder` keeps the value
        stored under that name.

        Readers only ever see these values as a placeholder, so sending one back means
        "unchanged". A placeholder for a name with nothing stored is left for the caller to judge.
        """
        stored = getattr(self, field) or {}
        return {
            name: stored.get(name, value) if value == placeholder else value
            for name, value in incoming.items()
        }


class AgentQuerySet(models.QuerySet["Agent"]):
    def for_user(self, user: Any) -> "AgentQuerySet":
        if user is None or not user.is_authenticated:
            return self.none()
        if user.is_superuser or user.is_staff:
            return self
        return self.filter(owner=user)


class Agent(models.Model):
    """An AI agent identity: it is handed a client config and may hold credentials of its own."""

    name = models.CharField(max_length=200)
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
    """One agent's own credential for one server (per_agent mode): API key or OAuth grant."""

    SECRET_FIELDS = ("access_token", "refresh_token")

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="connections")
    server = models.ForeignKey(McpServer, on_delete=models.CASCADE, related_name="connections")
    # The bearer token, API key or OAuth access token: ciphertext only.
    access_token = EncryptedTextField()
    refresh_token = EncryptedTextField()
    expires_at = models.DateTimeField(null=True, blank=True)
    refresh_claimed_at = models.DateTimeField(null=True, blank=True)
    needs_reauth = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=("agent", "server"), name="connection_unique_per_agent")
        ]
        indexes = [models.Index(fields=("expires_at",))]

    def __str__(self) -> str:
        return f"{self.agent} → {self.server}"

    def set_grant(self, *, access_token: str, refresh_token: str | None, expires_at: Any) -> None:
        """Store a grant. An absent refresh token keeps the old one (RFC 6749 section 6)."""
        self.access_token = access_token
        if refresh_token:
            self.refresh_token = refresh_token
        self.expires_at = expires_at
        self.needs_reauth = False
