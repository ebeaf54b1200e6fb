"""Writing audit events. Called by other apps' services inside their own transaction."""

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import models

from audit.context import RequestContext, current_request
from audit.models import AuditEvent

if TYPE_CHECKING:
    from django.contrib.auth.models import User

REDACTED = "[redacted]"
# NUL and lone UTF-16 surrogates: PostgreSQL's jsonb and text refuse both.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _names_only(value: Any) -> Any:
    return {name: REDACTED for name in value} if isinstance(value, Mapping) else value


def redacted_changes(
    *,
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    secret_fields: Iterable[str] = (),
    secret_map_fields: Iterable[str] = (),
) -> dict[str, dict[str, Any]]:
    """The {field: {old, new}} diff of two snapshots, with every secret field redacted.

    A secret map field (a dict whose values are secrets, like env) keeps its names and shows
    each value as "[redacted]"; it is compared before redaction, so a changed value shows.
    """
    secrets, maps = set(secret_fields), set(secret_map_fields)
    changes: dict[str, dict[str, Any]] = {}
    for field in sorted(set(old) | set(new)):
        before, after = old.get(field), new.get(field)
        if before == after:
            continue
        if field in maps:
            changes[field] = {"old": _names_only(before), "new": _names_only(after)}
        elif field in secrets:
            changes[field] = {
                "old": REDACTED if before else None,
                "new": REDACTED if after else None,
            }
        else:
            changes[field] = {"old": before, "new": after}
    return changes


def _storable(value: Any) -> Any:
    """`value` with what PostgreSQL cannot store replaced, in map keys too: NUL and lone
    surrogates become U+FFFD, non-finite numbers their name. An audit row must never make
    the change it records fail, whatever an upstream or a client put in a name or value.
    """
    if isinstance(value, str):
        return _UNSTORABLE.sub("\ufffd", value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Mapping):
        return {_storable(key): _storable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_storable(item) for item in value]
    if value is not None and not isinstance(value, bool | int | float):
        return str(value)  # a MongoDB ObjectId (docs/storage.md), or anything else not JSON
    return value


@dataclass(frozen=True, kw_only=True)
class AuditEntry:
    """One event to record with audit_events_create_many: audit_event_create's arguments."""

    action: str
    target: models.Model | None = None
    entity_type: str = ""
    entity_id: str = ""
    actor: AbstractBaseUser | AnonymousUser | None = None
    changes: Mapping[str, Any] | None = None


def _event(entry: AuditEntry, context: RequestContext) -> AuditEvent:
    """The unsaved row: `target` fills entity type/id/repr; anonymous actors count as system."""
    target, actor = entry.target, entry.actor
    entity_type, entity_id = entry.entity_type, entry.entity_id
    if target is not None:
        entity_type = entity_type or str(
            getattr(target, "audit_entity", target._meta.model_name) or ""
        )
        entity_id = entity_id or str(target.pk)
    real_actor = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    return AuditEvent(
        action=entry.action,
        entity_type=entity_type,
        entity_id=entity_id,
        entity_repr=_storable(str(target)[:200]) if target is not None else "",
        actor=cast("User | None", real_actor),  # the FK is to AUTH_USER_MODEL
        changes=_storable(dict(entry.changes or {})),
        request_ip=context.ip,
        request_id=context.request_id,
    )


def audit_event_create(
    *,
    action: str,
    target: models.Model | None = None,
    entity_type: str = "",
    entity_id: str = "",
    actor: AbstractBaseUser | AnonymousUser | None = None,
    changes: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Record one event. `target` fills entity type/id/repr; anonymous actors count as system."""
    entry = AuditEntry(
        action=action, target=target, entity_type=entity_type, entity_id=entity_id,
        actor=actor, changes=changes,
    )  # fmt: skip
    event = _event(entry, current_request.get())
    event.save()
    return event


def audit_events_create_many(*, entries: Sequence[AuditEntry]) -> list[AuditEvent]:
    """Record several events with one INSERT, in order, each filled like audit_event_create.

    For a batch of changes written in one transaction (a health sweep's chunk): one round
    trip instead of one per event.
    """
    context = current_request.get()
    return AuditEvent.objects.bulk_create([_event(entry, context) for entry in entries])
