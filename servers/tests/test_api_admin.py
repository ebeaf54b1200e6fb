from datetime import timedelta

import pytest
from django.utils import timezone

from servers.models import McpServer
from tests.factories import GroupFactory, McpServerFactory, TokenFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_it_lists_all_servers_for_admins(admin_api):
    McpServerFactory(scope="private_user", owner=UserFactory())
    McpServerFactory()
    body = admin_api.get("/api/v1/admin/servers?per_page=1").json()
    assert (body["total"], body["page"], body["per_page"], body["total_pages"]) == (2, 1, 1, 2)
    assert len(body["servers"]) == 1


def test_it_forbids_users_the_admin_endpoints(user_api):
    for path in ("servers", "servers/stats", "servers/health", "audit"):
        response = user_api.get(f"/api/v1/admin/{path}")
        assert response.status_code == 403
        assert response.json()["error"] == "forbidden"


def test_it_needs_the_admin_scope_even_for_admins(make_client, admin):
    assert (
        make_client(admin, scopes=["read:servers"]).get("/api/v1/admin/servers").status_code == 403
    )


def test_it_filters_admin_servers_by_user_id(admin_api):
    owner = UserFactory()
    McpServerFactory(name="Mine", scope="private_user", owner=owner)
    McpServerFactory(name="App")
    names = [
        s["server_name"]
        for s in admin_api.get(f"/api/v1/admin/servers?user_id={owner.pk}").json()["servers"]
    ]
    assert names == ["Mine"]


def test_it_filters_admin_servers_by_scope(admin_api):
    McpServerFactory(name="Mine", scope="shared_user", owner=UserFactory())
    McpServerFactory(name="App")
    names = [
        s["server_name"]
        for s in admin_api.get("/api/v1/admin/servers?scope=shared_app").json()["servers"]
    ]
    assert names == ["App"]


def test_it_filters_admin_servers_by_status(admin_api):
    McpServerFactory(name="Up")
    McpServerFactory(name="Down", status="error")
    names = [
        s["server_name"]
        for s in admin_api.get("/api/v1/admin/servers?status=error").json()["servers"]
    ]
    assert names == ["Down"]


@pytest.mark.parametrize("per_page", [5, 50])
def test_it_lists_admin_servers_in_a_constant_number_of_queries(
    admin_api, django_assert_max_num_queries, per_page
):
    McpServerFactory.create_batch(per_page)
    with django_assert_max_num_queries(3):
        assert (
            len(admin_api.get(f"/api/v1/admin/servers?per_page={per_page}").json()["servers"])
            == per_page
        )


def test_it_creates_an_app_wide_server_by_default(admin_api):
    body = {"server_name": "Shared", "url": "https://s.example.com/mcp"}
    response = admin_api.post("/api/v1/admin/servers", body, format="json")
    assert response.status_code == 201
    assert response.json()["scope"] == "shared_app"


def test_it_creates_a_group_server_only_members_see(admin_api, make_client):
    group = GroupFactory()
    member, outsider = UserFactory(), UserFactory()
    member.groups.add(group)
    body = {
        "server_name": "Team",
        "url": "https://t.example.com/mcp",
        "scope": "private_user",
        "group_id": str(group.pk),
    }
    server_id = admin_api.post("/api/v1/admin/servers", body, format="json").json()["id"]
    assert make_client(member).get(f"/api/v1/servers/{server_id}").status_code == 200
    assert make_client(outsider).get(f"/api/v1/servers/{server_id}").status_code == 404


def test_it_rejects_an_unknown_group(admin_api):
    body = {"server_name": "Team", "url": "https://t.example.com/mcp", "group_id": 987654}
    response = admin_api.post("/api/v1/admin/servers", body, format="json")
    assert response.status_code == 400
    assert "group_id" in response.json()["fields"]


def test_it_computes_stats_in_the_database(admin_api, admin, django_assert_max_num_queries):
    McpServerFactory(tools=[{"name": "a"}, {"name": "b"}, {"name": "c"}])
    McpServerFactory(
        scope="private_user", owner=admin, status="error", transport_type="sse", tools=[]
    )
    McpServerFactory(tools={"not": "a list"})
    TokenFactory(user=admin, type="api_key")
    TokenFactory(user=admin, type="oauth_access", expires_at=timezone.now() - timedelta(hours=1))
    with django_assert_max_num_queries(8):
        body = admin_api.get("/api/v1/admin/servers/stats").json()
    assert body["total_servers"] == 3
    assert body["servers_by_scope"] == {"shared_app": 2, "shared_user": 0, "private_user": 1}
    assert body["servers_by_status"] == {"active": 2, "inactive": 0, "error": 1}
    assert body["servers_by_transport"] == {"stdio": 0, "sse": 1, "websocket": 0, "http": 2}
    assert body["total_tools"] == 3
    assert (body["total_tokens"], body["active_tokens"], body["expired_tokens"]) == (2, 1, 1)
    assert body["tokens_by_type"] == {"api_key": 1, "oauth_access": 1, "oauth_refresh": 0}
    assert body["active_users"] == 1


def test_it_reports_fleet_health(admin_api):
    McpServerFactory(name="Up")
    McpServerFactory(name="Down", status="error", error_message="refused")
    McpServerFactory(name="Off", is_enabled=False)
    body = admin_api.get("/api/v1/admin/servers/health").json()
    assert body["summary"] == {"total": 3, "healthy": 1, "unhealthy": 1, "disabled": 1}
    down = next(s for s in body["services"] if s["server_name"] == "Down")
    assert down["error"] == "refused"
    assert set(down) == {"id", "path", "server_name", "status", "last_checked", "response_time_ms",
                         "last_connected", "error", "last_error"}  # fmt: skip
    assert down["status"] == "unhealthy"  # seed 004's vocabulary
    assert McpServer.objects.count() == 3
