"""Agents' API keys: issued once, stored as a digest, revoked, checked on every request."""

import hmac
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_event_create
from gateway.models import KEY_PREFIX, LOOKUP_CHARS, AgentKey, key_digest
from servers.models import Agent

# last_used_at is written at most this often per key: one UPDATE per call would make the
# key row the hottest row of the database.
LAST_USED_RESOLUTION = timedelta(seconds=60)


class KeyRejected(Exception):
    """The presented key is unknown, revoked or expired (401, without saying which)."""


def agent_key_create(
    *, actor: Any, agent: Agent, name: str, expires_at: datetime | None = None
) -> tuple[AgentKey, str]:
    """Issue a key; return the row and the raw key, which is never available again."""
    while True:  # a lookup prefix collision among 62**8 values is rare; draw again then
        raw = KEY_PREFIX + secrets.token_urlsafe(32).replace("-", "a").replace("_", "b")
        prefix = raw[len(KEY_PREFIX) : len(KEY_PREFIX) + LOOKUP_CHARS]
        if not AgentKey.objects.filter(prefix=prefix).exists():
            break
    key = AgentKey(agent=agent, name=name, prefix=prefix, digest=key_digest(raw))
    key.expires_at = expires_at
    key.full_clean()
    with transaction.atomic():
        key.save()
        audit_event_create(
            action=AuditEvent.Action.CREATE, target=key, actor=actor,
            changes={"agent": {"old": None, "new": agent.pk}, "name": {"old": None, "new": name},
                     "expires_at": {"old": None, "new": expires_at.isoformat() if expires_at
                                    else None},
                     "key": {"old": None, "new": "[redacted]"}},
        )  # fmt: skip
    return key, raw


def agent_key_revoke(*, actor: Any, key: AgentKey) -> AgentKey:
    """Revoke a key (idempotent: a revoked key keeps its first revocation time)."""
    now = timezone.now()
    with transaction.atomic():
        changed = AgentKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=now)
        if changed:
            audit_event_create(
                action=AuditEvent.Action.REVOKE, target=key, actor=actor,
                changes={"revoked_at": {"old": None, "new": now.isoformat()}},
            )  # fmt: skip
    key.refresh_from_db(fields=["revoked_at"])
    return key


def agent_key_authenticate(*, raw: str) -> AgentKey:
    """The usable key `raw` is, with its agent loaded; KeyRejected otherwise.

    The digest is compared in constant time; the prefix only narrows the lookup.
    """
    if not raw.startswith(KEY_PREFIX) or len(raw) < len(KEY_PREFIX) + LOOKUP_CHARS + 16:
        raise KeyRejected("not an agent key")
    prefix = raw[len(KEY_PREFIX) : len(KEY_PREFIX) + LOOKUP_CHARS]
    key = AgentKey.objects.usable().select_related("agent").filter(prefix=prefix).first()
    if key is None or not hmac.compare_digest(key.digest, key_digest(raw)):
        raise KeyRejected("unknown, revoked or expired key")
    now = timezone.now()
    stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
    AgentKey.objects.filter(stale, pk=key.pk).update(last_used_at=now)
    return key
