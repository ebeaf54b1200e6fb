"""Who may do what with servers. Visibility is McpServer.objects.for_user (404 otherwise).

Staff status grants nothing: the same Django permissions, usually given through admin
Groups, govern the console and the API (superusers hold every permission).

| action | who |
|---|---|
| create a private or user-shared server for oneself | every user (seed 004) |
| create an app-wide server, one for someone else or a group | `servers.add_mcpserver` |
| change / delete one's own private or user-shared server | its owner |
| change / delete any other visible server | `servers.change_mcpserver` / `delete_mcpserver` |
| reassign a server (owner, group) | `servers.change_mcpserver` |
| set a stdio command, args, env or cwd | `servers.configure_stdio` (it runs a program here) |
"""

from typing import Any

from django.core.exceptions import PermissionDenied

from servers.models import McpServer

STDIO_FIELDS = ("command", "args", "env", "cwd")


def _owns(user: Any, server: McpServer) -> bool:
    return server.scope != McpServer.Scope.SHARED_APP and server.owner_id == user.pk


def server_can_change(*, user: Any, server: McpServer) -> bool:
    return _owns(user, server) or user.has_perm("servers.change_mcpserver")


def server_can_delete(*, user: Any, server: McpServer) -> bool:
    return _owns(user, server) or user.has_perm("servers.delete_mcpserver")


def _check_stdio(user: Any, changes: dict[str, Any], server: McpServer | None) -> None:
    becomes_stdio = changes.get("transport_type") == McpServer.Transport.STDIO
    is_stdio = server is not None and server.transport_type == McpServer.Transport.STDIO
    touches = any(field in changes for field in STDIO_FIELDS)
    if (becomes_stdio or (is_stdio and touches)) and not user.has_perm("servers.configure_stdio"):
        raise PermissionDenied("Configuring a stdio command needs the configure_stdio permission.")


def server_authorize_change(*, user: Any, server: McpServer, changes: dict[str, Any]) -> None:
    """Raise PermissionDenied unless `user` may apply `changes` to `server`."""
    if not server_can_change(user=user, server=server):
        raise PermissionDenied("You may not change this server.")
    _check_stdio(user, changes, server)
    operator = user.has_perm("servers.change_mcpserver")
    if ("owner" in changes or "group" in changes) and not operator:
        raise PermissionDenied("Reassigning a server needs the change_mcpserver permission.")
    if changes.get("scope") == McpServer.Scope.SHARED_APP and not user.has_perm(
        "servers.add_mcpserver"
    ):
        raise PermissionDenied("App-wide servers need the add_mcpserver permission.")


def server_authorize_create(*, user: Any, fields: dict[str, Any]) -> dict[str, Any]:
    """Check and complete the owner of a new server; return the fields to register.

    Without add_mcpserver a user creates private_user or shared_user servers for themselves
    only. With it, any scope for anyone (app-wide by default); a user-scoped server without
    an owner is the creator's.
    """
    fields = dict(fields)
    creator = user.has_perm("servers.add_mcpserver")
    default = McpServer.Scope.SHARED_APP if creator else McpServer.Scope.PRIVATE_USER
    scope = fields.setdefault("scope", default)
    _check_stdio(user, fields, None)
    if not creator:
        if scope == McpServer.Scope.SHARED_APP:
            raise PermissionDenied("App-wide servers need the add_mcpserver permission.")
        if fields.get("owner") not in (None, user):
            raise PermissionDenied("Users may create servers only for themselves.")
        if fields.get("group") is not None:
            raise PermissionDenied("Group servers need the add_mcpserver permission.")
    if scope != McpServer.Scope.SHARED_APP and fields.get("owner") is None:
        fields["owner"] = user
    return fields
