"""The people and objects every figure is measured on: a user who owns things, the roles
that try to reach them, and the objects of each kind the URL conf's parameters name."""

import copy
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import User
from django.test import Client
from rest_framework.test import APIClient

from audit.models import AuditEvent
from credentials.models import Grant
from servers.models import Agent, McpServer
from tests.api_fixtures import client_for
from tests.factories import (
    AdminFactory,
    AgentFactory,
    GrantFactory,
    GroupFactory,
    McpServerFactory,
    StaffFactory,
    TokenFactory,
    UserFactory,
)

ROLES = ("anonymous", "owner", "other_user", "group_member", "staff_no_perms", "admin")
# A closed port: anything that calls a server out of a request fails at once.
DEAD_URL = "http://127.0.0.1:9/mcp"


@dataclass
class World:
    users: dict[str, User | None]
    stranger: User
    # kind -> variant -> the value that fills a URL parameter
    objects: dict[str, dict[str, str]] = field(default_factory=dict)
    clients: dict[tuple[str, str], Any] = field(default_factory=dict)

    def api(self, role: str) -> APIClient:
        if ("api", role) not in self.clients:
            user = self.users[role]
            self.clients["api", role] = APIClient() if user is None else client_for(user)
        return self.clients["api", role]

    def console(self, role: str) -> Client:
        """A signed-in browser. Its session is made once (the matrix rolls every request back,
        so the session row survives a logout); its cookies are put back before each request,
        so a logout or a password change in one cell does not sign it out of the next."""
        if ("console", role) not in self.clients:
            client = Client()
            if (user := self.users[role]) is not None:
                client.force_login(user)
            self.clients["console", role] = client
            self.clients["cookies", role] = copy.deepcopy(client.cookies)
        client = self.clients["console", role]
        client.cookies = copy.deepcopy(self.clients["cookies", role])
        return client


def _server(owner: User | None, scope: str, **extra: Any) -> McpServer:
    server = McpServerFactory(owner=owner, scope=scope, url=DEAD_URL, auth_type="bearer",
                              **extra)  # fmt: skip
    # granted_by: the tokens API lists a user's grants as "grant-<id>" tokens.
    GrantFactory(server=server, secret=f"grant-of-{server.name}", granted_by=owner)
    return server


def build_world() -> World:
    """Users for every role, and of each object kind one of the owner's, one of a stranger's
    (and, for servers, a group's and an app-wide one)."""
    group = GroupFactory()
    member, stranger, owner = UserFactory(), UserFactory(), UserFactory()
    member.groups.add(group)
    users: dict[str, User | None] = {
        "anonymous": None, "owner": owner, "other_user": UserFactory(),
        "group_member": member, "staff_no_perms": StaffFactory(), "admin": AdminFactory(),
    }  # fmt: skip
    mine = _server(owner, "private_user")
    theirs = _server(stranger, "private_user")
    grouped = _server(stranger, "private_user", group=group)
    app = _server(None, "shared_app")
    agent_mine, agent_theirs = AgentFactory(owner=owner), AgentFactory(owner=stranger)
    token_mine, token_theirs = TokenFactory(user=owner), TokenFactory(user=stranger)
    AuditEvent.objects.create(action="create", entity_type="server", entity_id=str(mine.pk),
                              entity_repr=mine.name, actor=owner)  # fmt: skip
    world = World(users=users, stranger=stranger)
    world.objects = {
        "server": {"mine": str(mine.pk), "strangers": str(theirs.pk),
                   "group": str(grouped.pk), "app": str(app.pk)},
        "agent": {"mine": str(agent_mine.pk), "strangers": str(agent_theirs.pk)},
        "token": {"mine": str(token_mine.pk), "strangers": str(token_theirs.pk),
                  "grant_mine": f"grant-{Grant.objects.get(server=mine).pk}",
                  "grant_strangers": f"grant-{Grant.objects.get(server=theirs).pk}"},
    }  # fmt: skip
    assert Agent.objects.count() == 2
    for role in ROLES:  # sessions made here, not in a request's rolled-back savepoint
        world.api(role)
        world.console(role)
    return world
