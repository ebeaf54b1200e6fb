"""Issuing scoped JWT pairs for our own API clients, audited (the token values never are)."""

from datetime import timedelta
from typing import Any, cast

from django.conf import settings
from django.db import transaction
from rest_framework_simplejwt.tokens import RefreshToken

from audit.models import AuditEvent
from audit.services import audit_event_create


def jwt_pair_for(
    *, user: Any, scopes: list[str] | tuple[str, ...] | frozenset[str]
) -> RefreshToken:
    """A refresh token carrying `scopes`; its .access_token copies the claim."""
    refresh = RefreshToken.for_user(user)
    refresh["scope"] = " ".join(sorted(scopes))
    return refresh


def jwt_issue(
    *,
    actor: Any,
    user: Any,
    scopes: list[str],
    expires_in_hours: int,
    description: str = "",
) -> dict[str, Any]:
    """Issue an access + refresh pair with `scopes`; the access token lives expires_in_hours.

    The caller has already checked that `scopes` do not exceed what it may grant.

    1. Make the pair with the scope claim; the refresh token lives at least as long.
    2. Audit the issue (never the tokens) in its own transaction.
    3. Return seed 004's token body.
    """
    refresh = jwt_pair_for(user=user, scopes=scopes)
    # The settings plugin types SIMPLE_JWT's values as object.
    default_lifetime = cast(timedelta, settings.SIMPLE_JWT["REFRESH_TOKEN_LIFETIME"])
    refresh_lifetime = max(default_lifetime, timedelta(hours=expires_in_hours))
    refresh.set_exp(lifetime=refresh_lifetime)
    access = refresh.access_token
    access.set_exp(lifetime=timedelta(hours=expires_in_hours))
    with transaction.atomic():
        audit_event_create(
            action=AuditEvent.Action.CREATE, entity_type="jwt", entity_id=str(access["jti"]),
            actor=actor,
            changes={
                "user": {"old": None, "new": user.pk},
                "scope": {"old": None, "new": refresh["scope"]},
                "expires_in_hours": {"old": None, "new": expires_in_hours},
                "description": {"old": None, "new": description},
                "token": {"old": None, "new": "[redacted]"},
            },
        )  # fmt: skip
    return {
        "access_token": str(access),
        "refresh_token": str(refresh),
        "expires_in": expires_in_hours * 3600,
        "refresh_expires_in": int(refresh_lifetime.total_seconds()),
        "token_type": "Bearer",
        "scope": refresh["scope"],
    }
