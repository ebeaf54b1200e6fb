"""Roles and JWT scopes.

Roles: admin (staff or superuser) and user. A JWT carries a "scope" claim (space-separated);
a view names the scope it needs for reading and for writing. Session (browser) requests carry
every scope the user's role allows. A JWT without the claim carries no scope at all, so a
token minted elsewhere with the same key cannot act through the API.
"""

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

READ_SERVERS = "read:servers"
WRITE_SERVERS = "write:servers"
READ_TOKENS = "read:tokens"
WRITE_TOKENS = "write:tokens"
ADMIN = "admin"
ALL_SCOPES = (READ_SERVERS, WRITE_SERVERS, READ_TOKENS, WRITE_TOKENS, ADMIN)


def is_admin(user: Any) -> bool:
    return bool(user and user.is_authenticated and (user.is_staff or user.is_superuser))


def role_scopes(user: Any) -> frozenset[str]:
    """Every scope the user's role allows."""
    if not (user and user.is_authenticated):
        return frozenset()
    scopes = set(ALL_SCOPES)
    if not is_admin(user):
        scopes.discard(ADMIN)
    return frozenset(scopes)


def request_scopes(request: Request) -> frozenset[str]:
    """The scopes this request may use: the token's claim capped by the role (it may shrink)."""
    allowed = role_scopes(request.user)
    token = request.auth
    if token is None or not hasattr(token, "payload"):
        return allowed  # session authentication: the role decides
    claim = token.payload.get("scope", "")
    granted = set(claim.split()) if isinstance(claim, str) else set()
    return frozenset(granted & allowed)


class HasScope(BasePermission):
    """Needs `view.read_scope` for safe methods and `view.write_scope` for the others."""

    message = "Your token lacks the scope this endpoint needs."

    def has_permission(self, request: Request, view: Any) -> bool:
        needed = getattr(
            view, "read_scope" if request.method in SAFE_METHODS else "write_scope", None
        )
        if needed is None:
            return True
        scopes = request_scopes(request)
        if needed not in scopes:
            self.message = f"This endpoint needs the {needed!r} scope."
            return False
        return True


class IsAdminRole(BasePermission):
    message = "This endpoint is for administrators."

    def has_permission(self, request: Request, view: Any) -> bool:
        return is_admin(request.user)
