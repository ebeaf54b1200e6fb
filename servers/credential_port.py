"""The one seam between servers and their credentials.

The credentials app depends on servers (its Grant rows point at servers and agents); servers
never imports it. Where servers needs a credential (a health check, an agent's client config,
the gateway) or must store or end one (a server document carrying auth_token, a server being
deleted), it calls `credentials()`, the implementation the credentials app installs when
Django starts (credentials.apps.CredentialsConfig.ready). The types it speaks are defined
here, so both sides meet at small dataclasses and neither reaches into the other's models.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from django.core.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from servers.models import Agent, McpServer

# (server, agent): whose credential to use for which server; agent None means the shared one.
Need = tuple["McpServer", "Agent | None"]


@dataclass(frozen=True, kw_only=True)
class Resolved:
    """How one server is reached for one principal: secrets and ${VAR}s filled in.

    `missing` says why it cannot be reached; the other fields are then empty. Never logged
    or shown: the repr names the server's state only.
    """

    url: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)
    missing: str = ""

    def __repr__(self) -> str:
        return f"Resolved(missing={self.missing!r})"


@dataclass(frozen=True, kw_only=True)
class CredentialState:
    """What may be shown about one credential: whether it is there and usable, never its value."""

    kind: str = ""  # api_key, bearer, oauth, or "" when none is stored
    has_secret: bool = False
    has_refresh: bool = False
    expires_at: datetime | None = None
    needs_reauth: bool = False
    reason: str = ""  # why it needs re-authorization or cannot be read


class CredentialPort(Protocol):
    def resolve(self, *, needs: Sequence[Need]) -> dict[int, Resolved]:
        """A pure read: one Resolved per server id of `needs`, in a fixed number of queries."""
        ...

    def refresh_due(self, *, needs: Sequence[Need], budget: float) -> None:
        """Refresh every grant of `needs` that expires within 5 minutes, concurrently and
        single-flight, waiting at most `budget` seconds (late refreshes still complete)."""
        ...

    def state(self, *, server: "McpServer", agent: "Agent | None" = None) -> CredentialState: ...

    def store_secret(
        self,
        *,
        server: "McpServer",
        agent: "Agent | None",
        secret: str | None,
        actor: Any,
        refresh: str | None = None,
        expires_at: datetime | None = None,
    ) -> None:
        """Store (or, with None, delete) a credential someone hands us, audited: a static API
        key or bearer token, or an OAuth token pair for an oauth server."""
        ...

    def check_secret(self, *, server: "McpServer", secret: str | None) -> None:
        """Raise ValidationError if `secret` could not be stored for the server as it is."""
        ...

    def forget(self, *, server: "McpServer", actor: Any, agent: "Agent | None" = None) -> None:
        """End credentials: revoked upstream where possible, deleted, audited. agent None ends
        every credential of the server (it is being deleted or its auth type changed)."""
        ...

    def version_expressions(self, *, agent: "Agent", server_ids: Any) -> dict[str, Any]:
        """Scalar subqueries (building them runs no query) that change whenever a credential
        or variable `agent` may present on `server_ids` changes: counts, latest updates and
        the earliest OAuth expiry (key `expires`), for a caller's own one-query version
        check (the gateway's fingerprint)."""
        ...

    def mark_reauth(
        self, *, server: "McpServer", agent: "Agent | None", reason: str, unchanged_since: datetime
    ) -> bool:
        """The upstream refused the credential presented for (server, agent): the agent's own
        in per_agent mode, the shared one otherwise. Flag it as needing a person to reconnect
        (once, audited), so resolve stops presenting it and the console and /me/ say so.
        False when there is none, it is flagged already, or it changed after
        `unchanged_since` (a newer credential is not blamed for an older one's refusal)."""
        ...


_installed: list[CredentialPort] = []


def install(port: CredentialPort) -> None:
    _installed[:] = [port]


def credentials() -> CredentialPort:
    if not _installed:
        raise ImproperlyConfigured("the credentials app is not installed (INSTALLED_APPS)")
    return _installed[0]
