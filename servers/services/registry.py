"""Registering, changing and removing MCP servers, with an audit row in the same transaction."""

from datetime import date, datetime
from typing import Any, cast

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import F
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import REDACTED, audit_event_create, redacted_changes
from mcpcontrol.lib.fields import Sealed
from servers.models import McpServer, default_alias

# Runtime fields belong to the health engine: changing them is not an operator's edit.
RUNTIME_FIELDS = frozenset(
    {
        "status", "tools", "capabilities", "protocol_version", "tools_last_synced_at",
        "init_duration_ms", "last_connected_at", "last_checked_at", "last_error_at",
        "error_message", "response_time_ms", "consecutive_failures", "check_claimed_at",
        "oauth_refresh_claimed_at", "version", "created_at", "updated_at", "created_by",
    }
)  # fmt: skip


class VersionConflict(Exception):
    """The row changed since the caller read it (optimistic locking lost)."""

    def __init__(self, *, current_version: int | None, provided_version: int | None) -> None:
        super().__init__("Server was modified by another process")
        self.current_version = current_version
        self.provided_version = provided_version


def _jsonable(value: Any) -> Any:
    if isinstance(value, Sealed):
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
        if field.name not in ("id", "created_at", "updated_at")
    }


def _redacted(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return redacted_changes(
        old=before, new=after, secret_fields=McpServer.SECRET_FIELDS,
        secret_map_fields=McpServer.SECRET_MAP_FIELDS,
    )  # fmt: skip


def _audit_server(
    *, action: str, server: McpServer, actor: Any, before: dict[str, Any], after: dict[str, Any]
) -> None:
    audit_event_create(
        action=action,
        target=server,
        actor=actor,
        changes=_redacted(before, after),
    )


def server_secret_maps_resolve(
    *, server: McpServer | None, changes: dict[str, Any]
) -> dict[str, Any]:
    """`changes` where an env or headers value of "[redacted]" keeps the stored value.

    Readers are shown every such value as "[redacted]", so a client that sends back what it
    read keeps the secrets instead of wiping them; a new value replaces the stored one and an
    omitted name is removed. Raises ValidationError for "[redacted]" with nothing stored
    under that name (`server` is None for a server not created yet).
    """
    resolved = dict(changes)
    for field in McpServer.SECRET_MAP_FIELDS:
        if not isinstance(changes.get(field), dict):
            continue  # absent, or a wrong type that full_clean reports
        incoming = changes[field]
        if server is not None:
            incoming = server.with_stored_values(field, incoming, placeholder=REDACTED)
        unknown = sorted(name for name, value in incoming.items() if value == REDACTED)
        if unknown:
            raise ValidationError({field: f"Nothing stored to keep for {', '.join(unknown)}."})
        resolved[field] = incoming
    return resolved


def server_register(*, actor: Any, **fields: Any) -> McpServer:
    """Create a server from validated field values; plaintext secrets are sealed on assignment.

    Raises django.core.exceptions.ValidationError with field errors; nothing is saved then.
    """
    fields.setdefault("alias", default_alias(fields.get("name", "")))
    fields.setdefault("path", "/" + fields["alias"])
    server = McpServer(**fields)
    if actor is not None and getattr(actor, "is_authenticated", False):
        server.created_by = actor
    server.full_clean()
    with transaction.atomic():
        server.save()
        _audit_server(
            action=AuditEvent.Action.CREATE, server=server, actor=actor,
            before={}, after=server_snapshot(server),
        )  # fmt: skip
    return server


def server_update(
    *, actor: Any, server: McpServer, changes: dict[str, Any], expected_version: int | None = None
) -> McpServer:
    """Apply `changes` if the row is still at `expected_version` (default: the version read).

    The write is a conditional UPDATE on the version, so of two concurrent writers exactly
    one wins and the other gets VersionConflict: no update is ever lost.
    """
    provided = expected_version if expected_version is not None else server.version
    if provided != server.version:
        raise VersionConflict(current_version=server.version, provided_version=provided)
    before = server_snapshot(server)
    for name, value in changes.items():
        setattr(server, name, value)
    server.full_clean()
    after = server_snapshot(server)
    changed = [name for name in after if after[name] != before[name]]
    if not changed:
        return server
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
    return server


def server_set_enabled(*, actor: Any, server: McpServer, enabled: bool) -> McpServer:
    """Enable or disable a server (a toggle is its own audit action, and bumps the version)."""
    if server.is_enabled == enabled:
        return server
    now = timezone.now()
    with transaction.atomic():
        McpServer.objects.filter(pk=server.pk).update(
            is_enabled=enabled, version=F("version") + 1, updated_at=now
        )
        server.refresh_from_db(fields=["is_enabled", "version", "updated_at"])
        audit_event_create(
            action=AuditEvent.Action.TOGGLE, target=server, actor=actor,
            changes={"is_enabled": {"old": not enabled, "new": enabled}},
        )  # fmt: skip
    return server


def _revoke_grants(*, actor: Any, server: McpServer) -> None:
    """Revoke the server's OAuth grants upstream (RFC 7009) before the rows disappear."""
    if server.auth_type != McpServer.AuthType.OAUTH:
        return
    from tokens.services import oauth_credential_delete  # tokens depends on servers, not back

    if server.oauth_access_token is not None or server.oauth_refresh_token is not None:
        oauth_credential_delete(server=server, actor=actor)
    for connection in server.connections.exclude(access_token=None, refresh_token=None):
        oauth_credential_delete(server=server, connection=connection, actor=actor)


def server_delete(*, actor: Any, server: McpServer) -> None:
    _revoke_grants(actor=actor, server=server)
    with transaction.atomic():
        before = server_snapshot(server)
        pk = server.pk
        audit_event_create(
            action=AuditEvent.Action.DELETE, target=server, actor=actor,
            changes=_redacted(before, {}),
        )  # fmt: skip
        McpServer.objects.filter(pk=pk).delete()
