"""Who may change what. Visibility itself is McpServer.objects.for_user (404 otherwise).

Admins (staff) change anything. An operator (a user granted servers.change_mcpserver,
usually through an admin Group) changes any server they can see. A user changes only servers
they own, and never a stdio server's command: running commands on the control plane is a
privilege.
"""

from typing import Any

from django.core.exceptions import PermissionDenied

from servers.models import McpServer

STDIO_FIELDS = ("command", "args", "env", "cwd")


def _is_admin(user: Any) -> bool:
    return bool(user and user.is_authenticated and (user.is_staff or user.is_superuser))


def server_can_change(*, user: Any, server: McpServer) -> bool:
    if _is_admin(user) or user.has_perm("servers.change_mcpserver"):
        return True
    return server.scope != McpServer.Scope.SHARED_APP and server.owner_id == user.pk


def server_authorize_change(*, user: Any, server: McpServer, changes: dict[str, Any]) -> None:
    """Raise PermissionDenied unless `user` may apply `changes` to `server`."""
    if not server_can_change(user=user, server=server):
        raise PermissionDenied("You may not change this server.")
    if _is_admin(user):
        return
    if changes.get("transport_type") == McpServer.Transport.STDIO or any(
        f in changes for f in STDIO_FIELDS
    ):
        raise PermissionDenied("Only administrators may configure stdio servers.")
    if "owner" in changes or "group" in changes:
        raise PermissionDenied("Only administrators may reassign a server.")
    if changes.get("scope") == McpServer.Scope.SHARED_APP:
        raise PermissionDenied("Only administrators may create app-wide servers.")


def server_authorize_create(*, user: Any, fields: dict[str, Any]) -> dict[str, Any]:
    """Check and complete the owner of a new server; return the fields to register.

    Users create private_user or shared_user servers for themselves only. Admins create any
    scope for anyone; a group server without an owner is owned by the admin creating it.
    """
    fields = dict(fields)
    scope = fields.setdefault(
        "scope", McpServer.Scope.PRIVATE_USER if not _is_admin(user) else McpServer.Scope.SHARED_APP
    )
    if not _is_admin(user):
        if scope == McpServer.Scope.SHARED_APP:
            raise PermissionDenied("Only administrators may create app-wide servers.")
        if fields.get("owner") not in (None, user):
            raise PermissionDenied("Users may create servers only for themselves.")
        if fields.get("group") is not None:
            raise PermissionDenied("Only administrators may create group servers.")
        if fields.get("transport_type") == McpServer.Transport.STDIO:
            raise PermissionDenied("Only administrators may create stdio servers.")
        fields["owner"] = user
        return fields
    if scope != McpServer.Scope.SHARED_APP and fields.get("owner") is None:
        fields["owner"] = user
    return fields
