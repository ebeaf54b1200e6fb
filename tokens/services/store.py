"""Storing, renewing and deleting a user's tokens; every event audited without the secret."""

from datetime import datetime
from typing import Any

from django.db import transaction

from audit.models import AuditEvent
from audit.services import audit_event_create
from tokens.models import Token


def _audit(action: str, token: Token, actor: Any, **extra: Any) -> None:
    changes = {
        "type": {"old": None, "new": token.type},
        "token": {"old": None, "new": "[redacted]"},
    }
    changes.update({k: {"old": None, "new": v} for k, v in extra.items()})
    audit_event_create(action=action, target=token, actor=actor, changes=changes)


def token_store(
    *,
    actor: Any,
    user: Any,
    type: str,
    identifier: str,
    token: str,
    expires_at: datetime | None = None,
    metadata: dict[str, Any] | None = None,
    email: str = "",
) -> Token:
    row = Token(
        user=user, type=type, identifier=identifier, token=token, expires_at=expires_at,
        metadata=metadata or {}, email=email or getattr(user, "email", ""),
    )  # fmt: skip
    row.full_clean()
    with transaction.atomic():
        row.save()
        _audit(AuditEvent.Action.TOKEN_STORED, row, actor, identifier=identifier)
    return row


def token_renew(
    *, actor: Any, token: Token, new_token: str, new_expires_at: datetime | None
) -> Token:
    """Replace a stored token's value and expiry (a manual refresh by its owner)."""
    token.token = new_token  # type: ignore[assignment]
    token.expires_at = new_expires_at
    with transaction.atomic():
        token.save(update_fields=["token", "expires_at", "updated_at"])
        _audit(AuditEvent.Action.TOKEN_REFRESHED, token, actor)
    return token


def token_delete(*, actor: Any, token: Token) -> None:
    with transaction.atomic():
        _audit(AuditEvent.Action.TOKEN_DELETED, token, actor)
        token.delete()
