"""Issue 10's access findings: staff status alone grants nothing, in the API as in the
console; a command needs its own permission; agents carry only what their owner may use."""

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from audit.models import AuditEvent
from credentials.models import Grant
from servers.models import McpServer
from tests.api_fixtures import client_for
from tests.factories import (
    AdminFactory,
    AgentFactory,
    GrantFactory,
    McpServerFactory,
    StaffFactory,
    UserFactory,
)
from tests.gaps import PERMISSION_JOIN

pytestmark = pytest.mark.django_db


def _with(user: User, *codenames: str) -> User:
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return User.objects.get(pk=user.pk)  # fresh: no stale permission cache


@pytest.fixture
def private() -> McpServer:
    server = McpServerFactory(scope="private_user", owner=UserFactory(), auth_type="bearer")
    GrantFactory(server=server, secret="victims-bearer-token")
    return server


def test_staff_without_permissions_cannot_see_other_users_private_servers(private):
    api = client_for(StaffFactory())

    assert api.get(f"/api/v1/servers/{private.pk}").status_code == 404
    assert api.get("/api/v1/servers").json()["pagination"]["total"] == 0


@pytest.mark.parametrize(
    "path", ["/api/v1/admin/servers", "/api/v1/admin/servers/stats",
             "/api/v1/admin/servers/health", "/api/v1/admin/audit"],
)  # fmt: skip
def test_staff_without_permissions_gets_no_admin_endpoint(path):
    response = client_for(StaffFactory()).get(path)

    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"


def test_staff_cannot_repoint_a_users_server_to_capture_its_token(private):
    response = client_for(StaffFactory()).patch(
        f"/api/v1/servers/{private.pk}", {"url": "https://evil.example.com/mcp", "version": 1},
        format="json",
    )  # fmt: skip

    assert response.status_code == 404
    assert McpServer.objects.get(pk=private.pk).url == private.url


def test_staff_cannot_read_another_users_agent_config(private):
    agent = AgentFactory(owner=private.owner)

    response = client_for(StaffFactory()).get(f"/api/v1/agents/{agent.pk}/mcp-config")

    assert response.status_code == 404
    assert not AuditEvent.objects.filter(action="secret_read").exists()


def test_staff_cannot_create_a_stdio_server():
    body = {"server_name": "Shell", "transport": {"type": "stdio", "command": "/bin/sh"}}

    response = client_for(StaffFactory()).post("/api/v1/servers", body, format="json")

    assert response.status_code == 403
    assert not McpServer.objects.exists()


def test_the_console_refuses_staff_without_permissions_too(private):
    client = Client()
    client.force_login(StaffFactory())

    assert client.get(f"/admin/servers/mcpserver/{private.pk}/change/").status_code == 403


@PERMISSION_JOIN
def test_an_operator_group_governs_the_api_as_it_does_the_console():
    operator = _with(StaffFactory(), "view_mcpserver", "change_mcpserver")
    server = McpServerFactory(scope="shared_app")
    api = client_for(operator)

    assert api.get("/api/v1/admin/servers").status_code == 200
    patched = api.patch(f"/api/v1/servers/{server.pk}", {"description": "x", "version": 1},
                        format="json")  # fmt: skip
    assert patched.status_code == 200
    assert api.delete(f"/api/v1/servers/{server.pk}").status_code == 403  # no delete perm


@PERMISSION_JOIN
def test_only_the_configure_stdio_permission_sets_a_command():
    stdio = McpServerFactory(transport_type="stdio", url="", command="/bin/true")
    operator = _with(UserFactory(), "change_mcpserver")
    body = {"command": "/bin/sh", "version": 1}

    refused = client_for(operator).patch(f"/api/v1/servers/{stdio.pk}", body, format="json")
    allowed = client_for(_with(operator, "configure_stdio")).patch(
        f"/api/v1/servers/{stdio.pk}", body, format="json"
    )

    assert refused.status_code == 403
    assert allowed.status_code == 200


def test_a_superusers_agent_config_never_carries_other_users_private_credentials(private):
    admin = AdminFactory()

    body = client_for(admin).get(f"/api/v1/agents/{AgentFactory(owner=admin).pk}/mcp-config")

    assert "victims-bearer-token" not in body.content.decode()
    assert private.server_key not in body.json()["mcpServers"]


def test_a_superuser_reads_another_users_agent_config_only_explicitly(private):
    agent = AgentFactory(owner=private.owner)
    api = client_for(AdminFactory())

    implicit = api.get(f"/api/v1/agents/{agent.pk}/mcp-config")
    explicit = api.get(f"/api/v1/agents/{agent.pk}/mcp-config?as_admin=1")

    assert implicit.status_code == 403
    assert explicit.status_code == 200
    assert "victims-bearer-token" in explicit.content.decode()
    assert AuditEvent.objects.filter(action="secret_read", actor=api.user).count() == 1


def test_a_user_shared_servers_credential_stays_with_its_owners_agents():
    owner, other = UserFactory(), UserFactory()
    server = McpServerFactory(scope="shared_user", owner=owner, auth_type="bearer")
    GrantFactory(server=server, secret="owners-own-token")

    mine = client_for(owner).get(f"/api/v1/agents/{AgentFactory(owner=owner).pk}/mcp-config")
    theirs = client_for(other).get(f"/api/v1/agents/{AgentFactory(owner=other).pk}/mcp-config")

    assert "owners-own-token" in mine.content.decode()
    assert "owners-own-token" not in theirs.content.decode()
    assert "does not share its credential" in theirs.json()["missing_credentials"][0]["reason"]
    McpServer.objects.filter(pk=server.pk).update(share_credential=True)
    shared = client_for(other).get(f"/api/v1/agents/{AgentFactory(owner=other).pk}/mcp-config")
    assert "owners-own-token" in shared.content.decode()


def test_one_users_blocked_token_endpoint_breaks_nobody_elses_config(settings):
    settings.MCPCONTROL_ALLOW_PRIVATE_UPSTREAMS = False
    owner = UserFactory()
    McpServerFactory(
        scope="shared_user", owner=owner, share_credential=True, auth_type="oauth",
        oauth={"grant_type": "client_credentials", "client_id": "c",
               "token_url": "https://mcp.example.com/token"},
    )  # fmt: skip
    # Written around validation, as a row from before the save-time guard would be.
    McpServer.objects.filter(owner=owner).update(
        oauth={"grant_type": "client_credentials", "client_id": "c",
               "token_url": "http://169.254.169.254/token"}
    )  # fmt: skip
    GrantFactory(server=McpServerFactory(auth_type="bearer", name="Fine"), secret="fine-token")
    other = UserFactory()

    response = client_for(other).get(f"/api/v1/agents/{AgentFactory(owner=other).pk}/mcp-config")

    assert response.status_code == 200
    assert "fine-token" in response.content.decode()
    assert not Grant.objects.filter(server__owner=owner).exists()
