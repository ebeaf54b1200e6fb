"""Storing, reading, renewing and deleting a user's tokens; every event audited without the
secret."""

from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_event_create, redacted_changes
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
        _audit(AuditEvent.Action.CREATE, row, actor, identifier=identifier)
    return row


def token_update(*, actor: Any, token: Token, changes: dict[str, Any]) -> Token:
    """Change a stored token's descriptive fields (not its value), audited with old/new."""
    before = {name: getattr(token, name) for name in changes}
    for name, value in changes.items():
        setattr(token, name, value)
    token.full_clean()
    with transaction.atomic():
        token.save(update_fields=[*changes, "updated_at"])
        audit_event_create(
            action=AuditEvent.Action.UPDATE, target=token, actor=actor,
            changes=redacted_changes(old=_jsonable(before), new=_jsonable(changes)),
        )  # fmt: skip
    return token


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in values.items()}


def token_reveal(*, actor: Any, token: Token) -> str:
    """The stored token's plaintext, for its owner. Reading a secret is audited like writing
    one: the row comes first, so a value is never handed out unrecorded."""
    _audit(AuditEvent.Action.SECRET_READ, token, actor)
    return token.token.reveal() if token.token is not None else ""


def token_renew(
    *,
    actor: Any,
    token: Token,
    new_token: str,
    new_expires_at: datetime | None,
    new_refresh_token: str | None = None,
) -> Token:
    """Replace a stored token's value and expiry (a manual refresh by its owner).

    A new refresh token, if given, replaces (or creates) the owner's oauth_refresh token
    with the same identifier, in the same transaction.
    """
    token.token = new_token
    token.expires_at = new_expires_at
    with transaction.atomic():
        token.save(update_fields=["token", "expires_at", "updated_at"])
        _audit(AuditEvent.Action.UPDATE, token, actor)
        if new_refresh_token:
            _refresh_token_replace(actor=actor, token=token, value=new_refresh_token)
    return token


def _refresh_token_replace(*, actor: Any, token: Token, value: str) -> None:
    sibling = Token.objects.filter(
        user=token.user_id, type=Token.Type.OAUTH_REFRESH, identifier=token.identifier
    ).first()
    if sibling is None:
        token_store(
            actor=actor, user=token.user, type=Token.Type.OAUTH_REFRESH,
            identifier=token.identifier, token=value, email=token.email,
        )  # fmt: skip
        return
    sibling.token = value
    sibling.save(update_fields=["token", "updated_at"])
    _audit(AuditEvent.Action.UPDATE, sibling, actor)


def token_stats() -> dict[str, Any]:
    """Counts for the admin dashboard, computed by the database (two queries)."""
    now = timezone.now()
    live = Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    totals = Token.objects.aggregate(
        total=Count("id"), active=Count("id", filter=live), expired=Count("id", filter=~live)
    )
    # Every type is listed, 0 when there is none: clients read tokens_by_type["api_key"].
    by_type = dict.fromkeys(Token.Type.values, 0)
    by_type.update(
        Token.objects.order_by()
        .values_list("type")
        .annotate(n=Count("id"))
        .values_list("type", "n")
    )
    return {
        "total_tokens": totals["total"],
        "tokens_by_type": by_type,
        "active_tokens": totals["active"],
        "expired_tokens": totals["expired"],
    }


def token_delete(*, actor: Any, token: Token) -> None:
    with transaction.atomic():
        _audit(AuditEvent.Action.DELETE, token, actor)
        token.delete()


def tokens_cleanup_expired() -> int:
    """Delete Token rows past expires_at, one audit event each; return how many."""
    count = 0
    for token in Token.objects.expired().only("id", "type", "identifier", "user_id"):
        with transaction.atomic():
            deleted, _ = Token.objects.filter(pk=token.pk, expires_at__lte=timezone.now()).delete()
            if deleted:  # a renewal may have moved expires_at since the query
                changes = {"type": token.type, "identifier": token.identifier, "reason": "expired"}
                audit_event_create(action=AuditEvent.Action.DELETE, target=token, changes=changes)
                count += 1
    return count
