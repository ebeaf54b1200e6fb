"""Scopes of API tokens, and the Django permissions endpoints require.

Staff status grants nothing here, as in the console: what a user may do is their Django
permissions (given through admin Groups; superusers hold them all). A JWT carries a "scope"
claim (space-separated) that can only narrow that: a view names the scope it needs for
reading and for writing. Session (browser) requests carry every scope the user's
permissions allow. A JWT without the claim carries no scope at all, so a token minted
elsewhere with the same key cannot act through the API.
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
# Permissions of the administrative endpoints: holding any of them allows the admin scope.
ADMIN_PERMISSIONS = ("servers.view_mcpserver", "servers.add_mcpserver", "audit.view_auditevent")


def scope_allowed(user: Any, scope: str) -> bool:
    """Whether the user's permissions allow `scope` (only the admin scope asks the database)."""
    if not (user and user.is_authenticated):
        return False
    return scope != ADMIN or any(user.has_perm(perm) for perm in ADMIN_PERMISSIONS)


def role_scopes(user: Any) -> frozenset[str]:
    """Every scope the user's permissions allow."""
    return frozenset(scope for scope in ALL_SCOPES if scope_allowed(user, scope))


def token_scopes(request: Request) -> frozenset[str] | None:
    """The scopes a JWT carries; None for a session (the permissions decide alone)."""
    token = request.auth
    if token is None or not hasattr(token, "payload"):
        return None
    claim = token.payload.get("scope", "")
    return frozenset(claim.split()) if isinstance(claim, str) else frozenset()


def request_scopes(request: Request) -> frozenset[str]:
    """The scopes this request may use: the token's claim capped by the role (it may shrink)."""
    granted = token_scopes(request)
    allowed = role_scopes(request.user)
    return allowed if granted is None else granted & allowed


class HasScope(BasePermission):
    """Needs `view.read_scope` for safe methods and `view.write_scope` for the others."""

    message = "Your token lacks the scope this endpoint needs."

    def has_permission(self, request: Request, view: Any) -> bool:
        needed = getattr(
            view, "read_scope" if request.method in SAFE_METHODS else "write_scope", None
        )
        if needed is None:
            return True
        granted = token_scopes(request)
        if (granted is not None and needed not in granted) or not scope_allowed(
            request.user, needed
        ):
            self.message = f"This endpoint needs the {needed!r} scope."
            return False
        return True


class HasDjangoPermission(BasePermission):
    """Needs `view.read_permission` for safe methods and `view.write_permission` for the
    others: the Django permission (app_label.codename) the console requires for the same."""

    def has_permission(self, request: Request, view: Any) -> bool:
        attribute = "read_permission" if request.method in SAFE_METHODS else "write_permission"
        needed: str | None = getattr(view, attribute, None)
        if needed is None or request.user.has_perm(needed):
            return True
        self.message = f"This needs the {needed} permission."
        return False
