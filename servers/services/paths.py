"""Seed 004's `path`: which server a caller reaches at the gateway's /mcp/servers{path} when
several servers they may use share that path, and what the console says about it.

The most specific server wins: the caller's own private server, then one reached through a
group of theirs, then one shared by a user, then an app-wide one; among equals the oldest
(lowest id), so the answer never depends on the order rows come back in. Only enabled
servers compete: a disabled server neither answers nor shadows.
"""

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Case, IntegerField, Value, When

from servers.models import McpServer

RANK_PRIVATE, RANK_GROUP, RANK_USER, RANK_APP = 0, 1, 2, 3


@dataclass(frozen=True, kw_only=True)
class PathChoice:
    """The server answering at a path for one caller, and the ones it shadows for them."""

    winner: McpServer | None
    shadowed: list[McpServer] = field(default_factory=list)


def path_variants(path: str) -> list[str]:
    """The stored paths a requested path matches: with and without one trailing slash."""
    bare = path.rstrip("/")
    return [bare, f"{bare}/"] if bare.startswith("/") else []


def server_path_resolve(*, user: Any, path: str) -> PathChoice:
    """The enabled server `user` (or their agents) reaches at `path`, in one query."""
    variants = path_variants(path)
    if not variants:
        return PathChoice(winner=None)
    rank = Case(
        When(owner=user, scope=McpServer.Scope.PRIVATE_USER, then=Value(RANK_PRIVATE)),
        When(group__in=user.groups.all(), then=Value(RANK_GROUP)),
        When(scope=McpServer.Scope.SHARED_USER, then=Value(RANK_USER)),
        default=Value(RANK_APP),
        output_field=IntegerField(),
    )
    found = list(
        McpServer.objects.usable_by(user).enabled().filter(path__in=variants)
        .annotate(path_rank=rank).order_by("path_rank", "pk")
    )  # fmt: skip
    return PathChoice(winner=found[0] if found else None, shadowed=found[1:])


# The console's account: who reaches a server, and how specifically. An audience is
# ("user", User), ("group", Group) or ("everyone", None).
Audience = tuple[str, Any]


def _audiences(server: McpServer) -> list[tuple[Audience, int]]:
    reached: list[tuple[Audience, int]] = []
    if server.scope == McpServer.Scope.PRIVATE_USER and server.owner is not None:
        reached.append((("user", server.owner), RANK_PRIVATE))
    if server.group is not None:
        reached.append((("group", server.group), RANK_GROUP))
    if server.scope == McpServer.Scope.SHARED_USER:
        reached.append((("everyone", None), RANK_USER))
    elif server.scope == McpServer.Scope.SHARED_APP:
        reached.append((("everyone", None), RANK_APP))
    return reached


def _rank_for(server: McpServer, audience: Audience) -> int | None:
    """How specifically a member of `audience` reaches `server` (None: they may not use it).
    A group or everyone is taken as its typical member: not the server's owner."""
    kind, who = audience
    if kind == "user" and server.scope == McpServer.Scope.PRIVATE_USER and server.owner == who:
        return RANK_PRIVATE
    if server.group is not None and (
        (kind == "group" and who == server.group)
        or (kind == "user" and who.groups.filter(pk=server.group_id).exists())
    ):
        return RANK_GROUP
    shared = {McpServer.Scope.SHARED_USER: RANK_USER, McpServer.Scope.SHARED_APP: RANK_APP}
    return shared.get(McpServer.Scope(server.scope))


def _describe(audience: Audience) -> str:
    kind, who = audience
    return {"user": f"user {who}", "group": f"users of {who}"}.get(kind, "everyone")


def server_path_shadowing(*, server: McpServer, viewer: Any) -> list[str]:
    """Lines for the server's console page: for whom another server at the same path wins
    over this one, and for whom this one wins. Only servers `viewer` may see are named (a
    private server's name is its owner's business)."""
    if not server.pk or not server.is_enabled or not path_variants(server.path):
        return []
    others = (
        McpServer.objects.for_user(viewer).enabled().exclude(pk=server.pk)
        .filter(path__in=path_variants(server.path)).select_related("owner", "group")
        .order_by("pk")
    )  # fmt: skip
    lines: list[str] = []
    for other in others:
        for audience, rank in _audiences(other):
            mine = _rank_for(server, audience)
            if mine is not None and (rank, other.pk) < (mine, server.pk):
                lines.append(f"path {server.path} is shadowed for {_describe(audience)} "
                             f"by {other.name}")  # fmt: skip
        for audience, rank in _audiences(server):
            theirs = _rank_for(other, audience)
            if theirs is not None and (rank, server.pk) < (theirs, other.pk):
                lines.append(f"path {server.path} shadows {other.name} for {_describe(audience)}")
    return list(dict.fromkeys(lines))
