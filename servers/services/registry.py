"""Registering, changing and removing MCP servers, with an audit row in the same transaction.

Optimistic locking lives here and only here: server_update writes with a conditional UPDATE
on the version the caller read, so of two concurrent writers exactly one wins.
"""

from datetime import date, datetime
from typing import Any, cast

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import F
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import REDACTED, audit_event_create, redacted_changes
from mcpcontrol.lib.crypto import DecryptionError
from mcpcontrol.lib.fields import Sealed, Unreadable
from servers.credential_port import credentials
from servers.document import UNSET
from servers.models import McpServer

# Runtime fields belong to the health engine: changing them is not an operator's edit.
RUNTIME_FIELDS = frozenset(
    {
        "status", "tools", "num_tools", "capabilities", "protocol_version",
        "tools_last_synced_at", "init_duration_ms", "last_connected_at", "last_checked_at",
        "last_error_at", "error_message", "response_time_ms", "consecutive_failures",
        "check_claim", "check_claimed_until", "version", "created_at", "updated_at",
        "created_by",
    }
)  # fmt: skip
# Changing how a server authenticates makes its stored credentials meaningless: they end.
_CREDENTIAL_SHAPE = ("auth_type", "credential_mode")


class VersionConflict(Exception):
    """The row changed since the caller read it (optimistic locking lost)."""

    def __init__(self, *, current_version: int | None, provided_version: int | None) -> None:
        super().__init__("Server was modified by another process")
        self.current_version = current_version
        self.provided_version = provided_version


def _jsonable(value: Any) -> Any:
    if isinstance(value, Sealed | Unreadable):
        return value.ciphertext  # compared only; redacted before it is written anywhere
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, models.Model):
        return value.pk
    return value


def server_snapshot(server: McpServer) -> dict[str, Any]:
    """Every concrete field's value, comparable and JSON-safe (secrets as ciphertext, env and
    headers in plain text): pass it through redacted_changes before writing it anywhere."""
    return {
        field.name: _jsonable(getattr(server, field.attname))
        for field in server._meta.concrete_fields
        if field.name not in ("id", "created_at", "updated_at", "check_claim")
    }


def _audit_server(
    *, action: str, server: McpServer, actor: Any, before: dict[str, Any], after: dict[str, Any]
) -> None:
    changes = redacted_changes(
        old=before, new=after, secret_fields=McpServer.SECRET_FIELDS,
        secret_map_fields=McpServer.SECRET_MAP_FIELDS,
    )  # fmt: skip
    audit_event_create(action=action, target=server, actor=actor, changes=changes)


def server_secret_maps_resolve(
    *, server: McpServer | None, changes: dict[str, Any], placeholder: str = REDACTED
) -> dict[str, Any]:
    """`changes` where an env or headers value of `placeholder` keeps the stored value.

    Readers are shown every such value as "[redacted]" (registry files as ""), so a client
    that sends back what it read keeps the secrets instead of wiping them; a new value
    replaces the stored one and an omitted name is removed. Raises ValidationError for a
    placeholder with nothing stored under that name (`server` None: not created yet).
    """
    resolved = dict(changes)
    for field in McpServer.SECRET_MAP_FIELDS:
        if not isinstance(changes.get(field), dict):
            continue  # absent, or a wrong type that full_clean reports
        incoming = changes[field]
        if server is not None:
            incoming = server.with_stored_values(field, incoming, placeholder=placeholder)
        unknown = sorted(name for name, value in incoming.items() if value == placeholder)
        if unknown and placeholder == REDACTED:
            raise ValidationError({field: f"Nothing stored to keep for {', '.join(unknown)}."})
        resolved[field] = incoming
    return resolved


def _status_for(enabled: bool) -> str:
    return McpServer.Status.ACTIVE if enabled else McpServer.Status.INACTIVE


def server_register(*, actor: Any, auth_secret: Any = UNSET, **fields: Any) -> McpServer:
    """Create a server from field values; plaintext secrets are sealed on assignment, and
    `auth_secret` (the static API key or bearer token) becomes its shared credential.

    Raises django.core.exceptions.ValidationError with field errors; nothing is saved then.
    """
    server = McpServer(**fields)
    server.path = server.path or "/" + server.effective_alias
    server.status = _status_for(server.is_enabled)
    if actor is not None and getattr(actor, "is_authenticated", False):
        server.created_by = actor
    server.full_clean()
    if auth_secret is not UNSET:
        credentials().check_secret(server=server, secret=auth_secret)
    with transaction.atomic():
        server.save()
        _audit_server(
            action=AuditEvent.Action.CREATE, server=server, actor=actor,
            before={}, after=server_snapshot(server),
        )  # fmt: skip
        if auth_secret not in (UNSET, None, ""):
            credentials().store_secret(server=server, agent=None, secret=auth_secret, actor=actor)
    return server


def _same_secret(current: Any, new: Any) -> bool:
    """A plaintext secret equal to the stored one is no change (ciphertexts always differ)."""
    if not isinstance(current, Sealed) or not isinstance(new, str):
        return False
    try:
        return current.reveal() == new
    except DecryptionError:
        return False


Snapshot = dict[str, Any]


def _changed(server: McpServer, changes: dict[str, Any]) -> tuple[Snapshot, Snapshot, list[str]]:
    before = server_snapshot(server)
    for name, value in changes.items():
        if name in McpServer.SECRET_FIELDS and _same_secret(getattr(server, name), value):
            continue
        setattr(server, name, value)
    if "is_enabled" in changes and server.is_enabled != before["is_enabled"]:
        server.status = _status_for(server.is_enabled)
        server.consecutive_failures = 0
    server.full_clean()
    after = server_snapshot(server)
    return before, after, [name for name in after if after[name] != before[name]]


def server_update_preview(*, server: McpServer, changes: dict[str, Any]) -> list[str]:
    """The fields `changes` would change on `server`, validated, without writing anything."""
    _before, _after, changed = _changed(McpServer.objects.get(pk=server.pk), changes)
    return changed


def server_update(
    *,
    actor: Any,
    server: McpServer,
    changes: dict[str, Any],
    expected_version: int | None = None,
    auth_secret: Any = UNSET,
) -> McpServer:
    """Apply `changes` if the row is still at `expected_version` (default: the version read).

    The write is a conditional UPDATE on the version, so of two concurrent writers exactly
    one wins and the other gets VersionConflict: no update is ever lost. A changed auth
    type or credential mode ends the stored credentials (audited), as does auth_secret None.
    Nothing changed means nothing written: no version bump, no audit row.
    """
    provided = expected_version if expected_version is not None else server.version
    if provided != server.version:
        raise VersionConflict(current_version=server.version, provided_version=provided)
    before, after, changed = _changed(server, changes)
    if auth_secret is not UNSET:  # refused before anything is written
        credentials().check_secret(server=server, secret=auth_secret)
    if changed:
        _write(server, provided, before, after, changed, actor)
    if any(name in changed for name in _CREDENTIAL_SHAPE):
        credentials().forget(server=server, actor=actor)
    if auth_secret is not UNSET:
        credentials().store_secret(server=server, agent=None, secret=auth_secret, actor=actor)
    return server


def _write(
    server: McpServer,
    provided: int,
    before: Snapshot,
    after: Snapshot,
    changed: list[str],
    actor: Any,
) -> None:
    # The snapshot holds concrete fields only, never reverse relations.
    attnames = [cast("models.Field[Any, Any]", server._meta.get_field(n)).attname for n in changed]
    values = {attname: getattr(server, attname) for attname in attnames}
    now = timezone.now()
    with transaction.atomic():
        won = McpServer.objects.filter(pk=server.pk, version=provided).update(
            **values, version=F("version") + 1, updated_at=now
        )
        if won != 1:
            current = (
                McpServer.objects.filter(pk=server.pk).values_list("version", flat=True).first()
            )
            raise VersionConflict(current_version=current, provided_version=provided)
        server.version, server.updated_at = provided + 1, now
        _audit_server(
            action=AuditEvent.Action.UPDATE, server=server, actor=actor,
            before={n: before[n] for n in changed}, after={n: after[n] for n in changed},
        )  # fmt: skip


def server_set_enabled(*, actor: Any, server: McpServer, enabled: bool) -> McpServer:
    """Enable or disable a server: status follows (inactive while disabled); a toggle is its
    own audit action and bumps the version."""
    if server.is_enabled == enabled:
        return server
    now = timezone.now()
    status = _status_for(enabled)
    with transaction.atomic():
        McpServer.objects.filter(pk=server.pk).update(
            is_enabled=enabled, status=status, consecutive_failures=0,
            version=F("version") + 1, updated_at=now,
        )  # fmt: skip
        server.refresh_from_db(fields=["is_enabled", "status", "version", "updated_at"])
        audit_event_create(
            action=AuditEvent.Action.TOGGLE, target=server, actor=actor,
            changes={"is_enabled": {"old": not enabled, "new": enabled}},
        )  # fmt: skip
    return server


def server_oauth_configure(
    *,
    server: McpServer,
    settings: dict[str, Any],
    action: str,
    actor: Any = None,
    metadata: dict[str, Any] | None = None,
    client_secret: Any = UNSET,  # str, None (remove) or UNSET (keep)
    changes: dict[str, Any] | None = None,
) -> McpServer:
    """Store what OAuth discovery or client registration learned about a server.

    Not an operator's edit of the document: no version bump, an audit row of its own.
    """
    server.oauth = settings
    fields = ["oauth", "updated_at"]
    if metadata is not None:
        server.oauth_metadata = metadata
        fields.append("oauth_metadata")
    if client_secret is not UNSET:
        server.oauth_client_secret = client_secret
        fields.append("oauth_client_secret")
    with transaction.atomic():
        server.save(update_fields=fields)
        audit_event_create(action=action, target=server, actor=actor, changes=changes or {})
    return server


def server_delete(*, actor: Any, server: McpServer) -> None:
    """Delete a server; its credentials are revoked upstream first (RFC 7009), then go too."""
    credentials().forget(server=server, actor=actor)
    with transaction.atomic():
        before = server_snapshot(server)
        _audit_server(
            action=AuditEvent.Action.DELETE, server=server, actor=actor, before=before, after={}
        )
        McpServer.objects.filter(pk=server.pk).delete()
