"""McpServer: one managed MCP server, and the names and bounds its document uses."""

import contextlib
import re
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from mcpcontrol.lib import secret_refs
from mcpcontrol.lib.crypto import DecryptionError
from mcpcontrol.lib.fields import EncryptedJSONField, EncryptedTextField, Sealed, Unreadable
from mcpcontrol.lib.headers import header_errors, value_error
from mcpcontrol.lib.urlguard import BlockedUrl, check_url_static
from servers.models import words
from servers.models.oauth import OAuthSettings

ALIAS_RE = r"^[a-z0-9][a-z0-9_-]*$"
alias_validator = RegexValidator(
    ALIAS_RE,
    "Alias must be lower-case letters, digits, '_' or '-', starting with a letter or digit.",
)
# Timeouts are operator input that sizes every health batch: bound them (5 minutes each).
MAX_TIMEOUT_MS = 300_000
_timeout_validators = [MinValueValidator(1), MaxValueValidator(MAX_TIMEOUT_MS)]
RECENTLY_ACTIVE = timedelta(minutes=5)
VARIABLE_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def sanitize_name(name: str) -> str:
    """The lower-cased name with every character outside [a-z0-9] replaced by '_'."""
    return re.sub(r"[^a-z0-9]", "_", name.lower())


def default_alias(name: str) -> str:
    return re.sub(r"_+", "_", sanitize_name(name)).strip("_") or "server"


class McpServerQuerySet(models.QuerySet["McpServer"]):
    def for_user(self, user: Any) -> "McpServerQuerySet":
        """What `user` may see: the only place the superuser bypass lives.

        Superusers see everything; everyone else (staff status grants nothing) sees what
        they may use: usable_by.
        """
        if user is not None and user.is_authenticated and user.is_superuser:
            return self
        return self.usable_by(user)

    def usable_by(self, user: Any) -> "McpServerQuerySet":
        """The servers `user` (and their agents) may use: app-wide and user-shared servers,
        their groups' servers and their own private ones. Never other users' private servers,
        not even for a superuser: an agent's config must not carry them."""
        if user is None or not user.is_authenticated:
            return self.none()
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
    the health engine last learned from it. Credentials themselves are credentials.Grant rows."""

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
        """active: enabled and working as far as we know; inactive: disabled; error: enabled
        but failing (MCPCONTROL_HEALTH_FAILURE_THRESHOLD checks in a row)."""

        ACTIVE = "active"
        INACTIVE = "inactive"
        ERROR = "error"

    class State(models.TextChoices):
        """The one state shown everywhere (console, API `state`, check_servers), derived from
        is_enabled, status and the failure counters (McpServer.state)."""

        HEALTHY = "healthy", "healthy"
        DEGRADED = "degraded", "degraded"
        UNREACHABLE = "unreachable", "unreachable"
        TIMEOUT = "timeout", "timeout"
        AUTH_REQUIRED = "auth_required", "auth required"
        PROTOCOL_ERROR = "protocol_error", "protocol error"
        DISABLED = "disabled", "disabled"
        NEVER_CHECKED = "never_checked", "never checked"

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
    SECRET_FIELDS = ("oauth_client_secret",)
    audit_entity = "server"

    # identity
    name = models.CharField(max_length=200)
    # Seed 000's alias: blank means "the sanitized name" (effective_alias). Unique per owner
    # when given, like names: never across owners, or a refusal would reveal a private server.
    alias = models.CharField(max_length=64, blank=True, validators=[alias_validator])
    description = models.TextField(blank=True)
    tags = models.JSONField(default=list, blank=True)
    path = models.CharField(max_length=200, blank=True)
    icon_path = models.CharField(max_length=500, blank=True)

    # transport
    transport_type = models.CharField(
        max_length=20, choices=Transport.choices, default=Transport.STREAMABLE_HTTP
    )
    # The upstream for remote transports (seed 004's proxy_pass_url, too, for stdio servers).
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

    # upstream auth: the settings. The credential itself is a credentials.Grant row.
    auth_type = models.CharField(max_length=10, choices=AuthType.choices, default=AuthType.NONE)
    header_name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=50, blank=True)
    credential_mode = models.CharField(
        max_length=10, choices=CredentialMode.choices, default=CredentialMode.SHARED
    )
    # Whether other users' agents may present this server's shared credential. A shared_user
    # or group server's credential is its owner's (their token, their quota): by default
    # only the owner's agents get it. App-wide servers always share theirs.
    share_credential = models.BooleanField(default=False)
    # In per_agent mode the health check borrows this agent's credential.
    probe_agent = models.ForeignKey(
        "servers.Agent", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # OAuth client settings (OAuthSettings keys) and what discovery learned.
    oauth = models.JSONField(default=dict, blank=True)
    oauth_metadata = models.JSONField(default=dict, blank=True)
    oauth_headers = models.JSONField(default=dict, blank=True)
    # The OAuth client secret (operator-entered or from RFC 7591 registration): ciphertext.
    oauth_client_secret = EncryptedTextField()

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
    timeout_ms = models.PositiveIntegerField(default=30000, validators=_timeout_validators)
    init_timeout_ms = models.PositiveIntegerField(default=60000, validators=_timeout_validators)
    chat_menu = models.BooleanField(default=True)
    server_instructions = models.TextField(blank=True)
    custom_user_vars = models.JSONField(default=dict, blank=True)
    mcp_options = models.JSONField(default=dict, blank=True)
    # Registry listing fields no code queries (seed 004: num_stars, is_python, license,
    # auth_provider, organization_id, supported_transports, schema_version): kept as sent.
    catalog = models.JSONField(default=dict, blank=True)

    # runtime, written by the health engine on meaningful events only
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    tools = models.JSONField(default=list, blank=True)
    # len(tools) after a check; a client may declare it before the first check (seed 004).
    num_tools = models.PositiveIntegerField(default=0)
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
    # Check lease: one health check of a server at a time, across workers. The token names
    # the claim (two claims in one microsecond stay distinct); the lease ends on its own at
    # check_claimed_until, so a killed worker's servers are free after 2 x their timeouts.
    check_claim = models.CharField(max_length=32, blank=True)
    check_claimed_until = models.DateTimeField(null=True, blank=True)

    version = models.PositiveIntegerField(default=1)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = McpServerQuerySet.as_manager()

    class Meta:
        # Seed 004's collection name, so an application sharing the database finds the rows
        # (docs/storage.md maps the seed's index fields to these).
        db_table = "mcps"
        ordering = ("name",)
        verbose_name = "MCP server"
        # Running a stdio server runs a program on the control plane as its user: a right of
        # its own, beyond changing servers (superusers hold it, as every permission).
        permissions = [("configure_stdio", "Can configure stdio commands, arguments and env")]
        indexes = [
            models.Index(fields=("name", "owner", "scope")),
            models.Index(fields=("status", "owner")),
            models.Index(fields=("auth_type",)),
            models.Index(fields=("-created_at",), name="server_created_desc"),
            models.Index(fields=("is_enabled", "check_claimed_until")),
        ]
        constraints = [
            models.CheckConstraint(
                name="server_owner_matches_scope",
                condition=Q(scope="shared_app") | Q(owner__isnull=False),
            ),
            models.CheckConstraint(name="server_version_positive", condition=Q(version__gte=1)),
            # Seed 004 indexes (server_name, user_id, scope): names are unique per owner, so
            # nobody learns another user's private server names from a refusal.
            models.UniqueConstraint(
                fields=("name", "owner", "scope"),
                condition=Q(owner__isnull=False),
                name="server_name_unique_per_owner",
            ),
            models.UniqueConstraint(
                fields=("name",), condition=Q(owner__isnull=True), name="server_name_unique_app"
            ),
            models.UniqueConstraint(
                fields=("path", "owner", "scope"),
                condition=Q(owner__isnull=False) & ~Q(path=""),
                name="server_path_unique_per_owner",
            ),
            models.UniqueConstraint(
                fields=("path",),
                condition=Q(owner__isnull=True) & ~Q(path=""),
                name="server_path_unique_app",
            ),
            models.UniqueConstraint(
                fields=("alias", "owner", "scope"),
                condition=Q(owner__isnull=False) & ~Q(alias=""),
                name="server_alias_unique_per_owner",
            ),
            models.UniqueConstraint(
                fields=("alias",),
                condition=Q(owner__isnull=True) & ~Q(alias=""),
                name="server_alias_unique_app",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def server_key(self) -> str:
        """Seed 003's key: the lower-cased name, every other character '_'."""
        return sanitize_name(self.name)

    @property
    def effective_alias(self) -> str:
        """Seed 000: the alias, or the sanitized name when none was given."""
        return self.alias or default_alias(self.name)

    @property
    def is_remote(self) -> bool:
        return self.transport_type != self.Transport.STDIO

    def grant_agent(self, agent: Any) -> Any:
        """Whose credential serves `agent` here: the agent's own in per_agent mode, else the
        shared one (None)."""
        return agent if self.credential_mode == self.CredentialMode.PER_AGENT else None

    @property
    def is_recently_active(self) -> bool:
        """Seed 004: connected within the last 5 minutes."""
        last = self.last_connected_at
        return last is not None and timezone.now() - last <= RECENTLY_ACTIVE

    @property
    def last_failure(self) -> str:
        """The outcome of the latest failed check ("" when the latest check passed): the
        health engine stores the error as "<outcome>: <message>"."""
        if not self.consecutive_failures and self.status != self.Status.ERROR:
            return ""
        outcome = self.error_message.split(":", 1)[0].strip()
        return outcome if outcome in self.State.values else self.State.PROTOCOL_ERROR

    @property
    def state(self) -> "McpServer.State":
        """Steps: 1. disabled (by the operator, or stdio not run here); 2. failing: auth
        required at once (it needs a person), other failures "degraded" until
        MCPCONTROL_HEALTH_FAILURE_THRESHOLD checks in a row failed, then the failure itself;
        3. healthy once any check passed; 4. never checked."""
        if not self.is_enabled or (
            self.transport_type == self.Transport.STDIO and not settings.MCPCONTROL_ALLOW_STDIO
        ):
            return self.State.DISABLED
        if failure := self.last_failure:
            below = self.consecutive_failures < settings.MCPCONTROL_HEALTH_FAILURE_THRESHOLD
            if failure != self.State.AUTH_REQUIRED and below and self.status != self.Status.ERROR:
                return self.State.DEGRADED
            return self.State(failure)
        if self.last_connected_at is not None or self.last_checked_at is not None:
            return self.State.HEALTHY
        return self.State.NEVER_CHECKED

    @property
    def state_label(self) -> str:
        return str(self.State(self.state).label)

    @property
    def last_error_detail(self) -> str:
        """The raw message of the latest failure, without its "<outcome>: " prefix."""
        if not self.last_failure:
            return ""
        head, _, rest = self.error_message.partition(":")
        return rest.strip() if head.strip() == self.last_failure else self.error_message

    @property
    def state_message(self) -> str:
        """The latest failure in plain words ("" when the latest check passed)."""
        if not self.last_failure:
            return ""
        where = words.where(transport=self.transport_type, url=self.url, command=self.command)
        return words.plain_error(
            where=where, outcome=self.last_failure, message=self.last_error_detail
        )

    @property
    def oauth_config(self) -> OAuthSettings:
        return OAuthSettings.from_json(self.oauth)

    @property
    def secrets_readable(self) -> bool:
        """False when env or headers were written under a key that is no longer configured."""
        return not any(isinstance(getattr(self, f), Unreadable) for f in self.SECRET_MAP_FIELDS)

    def variables_used(self) -> set[str]:
        """The ${NAME} placeholders in url, headers, env and args (names only)."""
        texts = [self.url, *self.args]
        for field in self.SECRET_MAP_FIELDS:
            value = getattr(self, field)
            if isinstance(value, dict):
                texts += [*value.keys(), *value.values()]
        return {m for text in texts if isinstance(text, str) for m in VARIABLE_RE.findall(text)}

    def clean(self) -> None:
        errors: dict[str, str] = {}
        self._clean_transport(errors)
        self._clean_auth(errors)
        self._clean_oauth(errors)
        self._clean_access(errors)
        self._clean_documents(errors)
        self._clean_secret_refs(errors)
        if self.path and not self.path.startswith("/"):
            errors["path"] = "Path must start with '/'."
        self._clean_unique(errors)
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
        if not self.url:
            errors["url"] = f"A {self.transport_type} server needs a URL."
            return
        try:
            scheme = urlsplit(self.url).scheme
        except ValueError:  # e.g. an unclosed IPv6 bracket
            scheme = ""
        if scheme not in schemes:
            errors["url"] = (
                f"A {self.transport_type} URL must start with "
                f"{' or '.join(s + '://' for s in schemes)} and name a host."
            )
            return
        _check_url(errors, "url", self.url, schemes)

    def _clean_auth(self, errors: dict[str, str]) -> None:
        if self.auth_type == self.AuthType.API_KEY and not self.header_name.strip():
            errors["header_name"] = "An api_key server needs the name of the header to send."
        if self.header_name and (problem := header_errors({self.header_name: ""})):
            errors["header_name"] = problem
        if problem := value_error(self.prefix):
            errors["prefix"] = f"The prefix is sent in a header: {problem}."
        if (
            self.credential_mode == self.CredentialMode.PER_AGENT
            and self.auth_type == self.AuthType.NONE
        ):
            errors["credential_mode"] = "per_agent mode needs an auth type other than none."

    def _clean_oauth(self, errors: dict[str, str]) -> None:
        if not isinstance(self.oauth, dict):
            errors["oauth"] = "oauth must be an object."
            return
        config = self.oauth_config
        for key in OAuthSettings.URL_KEYS:
            url = getattr(config, key)
            if url:
                _check_url(errors, "oauth", url, ("http", "https"), label=f"oauth.{key}")
        if config.grant_type not in self.OAuthGrant.values:
            errors["oauth"] = f"oauth.grant_type must be one of {', '.join(self.OAuthGrant)}."
        if config.token_exchange_method.upper() != "POST":
            errors["oauth"] = "oauth.token_exchange_method: only POST is supported (RFC 6749)."
        if not isinstance(self.oauth_headers, dict):
            errors["oauth_headers"] = "oauth_headers must be an object."
        elif problem := header_errors(self.oauth_headers):
            errors["oauth_headers"] = problem

    def _clean_access(self, errors: dict[str, str]) -> None:
        if self.scope == self.Scope.SHARED_APP and self.owner_id is not None:
            errors["owner"] = "An app-wide (shared_app) server has no owner."
        if self.scope != self.Scope.SHARED_APP and self.owner_id is None:
            errors["owner"] = f"A {self.scope} server needs an owner."

    def _clean_documents(self, errors: dict[str, str]) -> None:
        for field in ("tags", "args"):
            value = getattr(self, field)
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                errors[field] = f"{field} must be a list of strings."
        for field in self.SECRET_MAP_FIELDS:
            value = getattr(self, field)
            if isinstance(value, Unreadable):
                continue  # kept as stored; readers report it
            if not isinstance(value, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in value.items()
            ):
                errors[field] = f"{field} must be an object of string values."
            elif field == "headers" and (problem := header_errors(value)):
                errors[field] = problem
        if not isinstance(self.custom_user_vars, dict) or not all(
            isinstance(v, dict) for v in self.custom_user_vars.values()
        ):
            errors["custom_user_vars"] = "custom_user_vars must map names to {title, ...} objects."

    def _secret_values(self) -> list[tuple[str, str, str]]:
        """(field, name, value) of every credential value: env and header values, the client
        secret. Unreadable ones are left out (kept as stored)."""
        found = [
            (field, name, value)
            for field in self.SECRET_MAP_FIELDS
            if isinstance(getattr(self, field), dict)
            for name, value in getattr(self, field).items()
            if isinstance(value, str)
        ]
        if isinstance(self.oauth_client_secret, Sealed):
            with contextlib.suppress(DecryptionError):  # unreadable: kept as stored
                found.append(("oauth_client_secret", "", self.oauth_client_secret.reveal()))
        return found

    def _clean_secret_refs(self, errors: dict[str, str]) -> None:
        """A secret reference (mcpcontrol.lib.secret_refs) must be well formed, allowed and
        resolve when it is saved. Only new ones are tried: a store that is down must not stop
        anyone from editing (or disabling) a server whose references were fine when stored."""
        new = [v for v in self._secret_values() if secret_refs.is_reference(v[2])]
        if new and self.pk is not None:
            stored = McpServer.objects.filter(pk=self.pk).first()
            kept = {value for _, _, value in stored._secret_values()} if stored else set()
            new = [v for v in new if v[2] not in kept]
        for field, name, value in new:
            if field not in errors and (problem := secret_refs.check(value)):
                errors[field] = f"{name}: {problem}" if name else problem

    def _clean_unique(self, errors: dict[str, str]) -> None:
        """Names and paths are unique per owner and scope (app-wide ones among themselves),
        checked here so the error names the field; the constraints catch a concurrent race."""
        peers = McpServer.objects.exclude(pk=self.pk)
        peers = peers.filter(owner__isnull=True) if self.owner_id is None else peers.filter(
            owner_id=self.owner_id, scope=self.scope
        )  # fmt: skip
        if "name" not in errors and peers.filter(name=self.name).exists():
            errors["name"] = f"You already have a server named {self.name!r}."
        if self.path and "path" not in errors and peers.filter(path=self.path).exists():
            errors["path"] = f"You already have a server at path {self.path!r}."
        if self.alias and "alias" not in errors and peers.filter(alias=self.alias).exists():
            errors["alias"] = f"You already have a server with alias {self.alias!r}."

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
        stored = getattr(self, field)
        stored = stored if isinstance(stored, dict) else {}
        return {
            name: stored.get(name, value) if value == placeholder else value
            for name, value in incoming.items()
        }


def _check_url(
    errors: dict[str, str], field: str, url: str, schemes: tuple[str, ...], *, label: str = ""
) -> None:
    """Refuse at save time what the connect-time guard would refuse on every use."""
    try:
        check_url_static(url, allowed_schemes=schemes)
    except BlockedUrl as exc:
        errors[field] = f"{label + ': ' if label else ''}{exc}"
