"""The bugs issue 9 lists (and a few more the same tries turned up), one test each: the
export of names that are paths, a row no key can decrypt, authentication type "none",
errors on keys the client never sent, status versus enabled, private names per user."""

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from audit.models import AuditEvent
from credentials.models import Grant
from mcpcontrol.lib.fields import UNREADABLE_MESSAGE
from servers import services
from servers.models import McpServer
from tests.factories import AdminFactory, AgentFactory, UserFactory

pytestmark = pytest.mark.django_db


def _created(api: Any, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post("/api/v1/servers", body, format="json")
    assert response.status_code == 201, response.content
    return dict(response.json())


# --- export_servers: names that are paths -----------------------------------------------


def _export(directory: Path) -> dict[str, Any]:
    call_command("export_servers", "--out", str(directory), stdout=StringIO())
    return {path.name: json.loads(path.read_text()) for path in sorted(directory.glob("*.json"))}


def test_export_writes_names_that_are_paths_inside_out_under_safe_unique_names(tmp_path):
    for name, path in (("../x", "/up"), ("a/b", "/slash"), ("x", "/x"), ("a_b", "/a_b")):
        services.server_register(
            actor=None, name=name, path=path, url=f"https://mcp.example.com{path}"
        )
    out = tmp_path / "out"

    files = _export(out)

    assert set(files) == {"x.json", "x-2.json", "a_b.json", "a_b-2.json"}
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.json")) == sorted(
        f"out/{name}" for name in files
    )
    assert {body["server_name"] for body in files.values()} == {"../x", "a/b", "x", "a_b"}


def test_export_of_names_that_are_paths_seeds_back_to_the_same_files(tmp_path):
    AdminFactory(username="root")
    for name, path in (("../x", "/up"), ("a/b", "/slash"), ("x", "/x")):
        services.server_register(
            actor=None, name=name, path=path, url=f"https://mcp.example.com{path}"
        )
    first = _export(tmp_path / "first")
    McpServer.objects.all().delete()

    call_command("seed_servers", "--servers-dir", str(tmp_path / "first"), "--admin-user", "root",
                 stdout=StringIO())  # fmt: skip

    assert set(McpServer.objects.values_list("name", flat=True)) == {"../x", "a/b", "x"}
    assert _export(tmp_path / "second") == first


# --- one row whose env/headers no key can decrypt ---------------------------------------


def _write_under_another_key(server: McpServer) -> None:
    """env and headers as a deployment that lost its key has them: Fernet ciphertext of a key
    no longer configured (raw SQL: the field would encrypt under the configured keys)."""
    other = Fernet(Fernet.generate_key())
    env = other.encrypt(json.dumps({"TOKEN": "lost-env-value"}).encode()).decode()
    headers = other.encrypt(json.dumps({"X-Key": "lost-header-value"}).encode()).decode()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE mcps SET env = %s, headers = %s WHERE id = %s",
            [env, headers, server.pk],
        )


@pytest.fixture
def unreadable(db: Any) -> McpServer:
    server = services.server_register(
        actor=None, name="Lost Key", url="https://lost.example.com/mcp",
        headers={"X-Key": "v"}, tools=[{"name": "lookup"}],
    )  # fmt: skip
    services.server_register(
        actor=None, name="Fine", url="https://fine.example.com/mcp", tools=[{"name": "search"}]
    )
    _write_under_another_key(server)
    return server


@pytest.mark.sql_only("its fixture writes a row under another key with raw SQL")
def test_an_unreadable_row_still_lists_every_server(unreadable, user_api):
    response = user_api.get("/api/v1/servers")

    assert response.status_code == 200
    assert {s["server_name"] for s in response.json()["servers"]} == {"Lost Key", "Fine"}


@pytest.mark.sql_only("its fixture writes a row under another key with raw SQL")
def test_an_unreadable_row_shows_why_in_its_detail(unreadable, user_api):
    detail = user_api.get(f"/api/v1/servers/{unreadable.pk}").json()

    assert detail["credentials_error"] == UNREADABLE_MESSAGE
    assert "lost-header-value" not in json.dumps(detail)


@pytest.mark.sql_only("its fixture writes a row under another key with raw SQL")
def test_an_unreadable_row_leaves_another_users_agent_config_and_tools_working(
    unreadable, make_client
):
    agent = AgentFactory()
    api = make_client(agent.owner)

    config = api.get(f"/api/v1/agents/{agent.pk}/mcp-config")
    tools = api.get(f"/api/v1/agents/{agent.pk}/tools")

    assert config.status_code == 200 and tools.status_code == 200
    assert list(config.json()["mcpServers"]) == ["fine"]
    [missing] = config.json()["missing_credentials"]
    assert (missing["server_name"], missing["reason"]) == ("Lost Key", UNREADABLE_MESSAGE)
    assert {t["mcp_name"] for t in tools.json()["tools"]} == {
        "mcp__lost_key__lookup", "mcp__fine__search"
    }  # fmt: skip


@pytest.mark.sql_only("its fixture writes a row under another key with raw SQL")
def test_an_unreadable_row_leaves_the_admin_changelist_working(unreadable, client):
    client.force_login(AdminFactory(is_superuser=True))

    listing = client.get("/admin/servers/mcpserver/")
    page = client.get(f"/admin/servers/mcpserver/{unreadable.pk}/change/")

    assert listing.status_code == 200
    assert "Lost Key" in listing.content.decode() and "Fine" in listing.content.decode()
    assert page.status_code == 200
    assert UNREADABLE_MESSAGE in page.content.decode()
    assert "lost-header-value" not in page.content.decode()


@pytest.mark.sql_only("its fixture writes a row under another key with raw SQL")
def test_an_unreadable_row_checks_as_auth_required(unreadable):
    result = services.server_check(server_id=unreadable.pk)

    assert result is not None
    assert (result.outcome, result.message) == ("auth_required", UNREADABLE_MESSAGE)


@pytest.mark.sql_only("its fixture writes a row under another key with raw SQL")
def test_an_unreadable_rows_detail_patched_back_keeps_its_ciphertext(unreadable, admin_api):
    before = McpServer.objects.get(pk=unreadable.pk).headers
    detail = admin_api.get(f"/api/v1/servers/{unreadable.pk}").json()

    response = admin_api.patch(f"/api/v1/servers/{unreadable.pk}", detail, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["version"] == detail["version"]
    assert McpServer.objects.get(pk=unreadable.pk).headers == before  # still the lost ciphertext


# --- connection_details.authentication.type "none" ---------------------------------------

API_KEY = {
    "name": "Keyed", "server_type": "websocket",
    "connection_details": {"url": "wss://keyed.example.com/mcp", "authentication": {
        "type": "apiKey", "key": "k3y-value", "headerName": "X-Custom-API-Key", "prefix": None}},
}  # fmt: skip


def test_authentication_type_none_removes_the_stored_secret_with_an_audit_row(admin_api):
    server = _created(admin_api, API_KEY)
    grant = Grant.objects.get(server_id=server["id"], agent=None)
    body = {"connection_details": {"authentication": {"type": "none"}}, "version": 1}

    response = admin_api.patch(f"/api/v1/servers/{server['id']}", body, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["auth_type"] == "none"
    assert response.json()["credential"]["stored"] is False
    assert not Grant.objects.filter(server_id=server["id"]).exists()
    assert AuditEvent.objects.filter(
        entity_type="grant", entity_id=str(grant.pk), action="delete"
    ).exists()


def test_authentication_type_none_on_a_server_without_auth_still_removes_a_secret(admin_api):
    """auth_type unchanged (none → none): the secret must go all the same."""
    server = _created(admin_api, {**API_KEY, "connection_details": {
        "url": "wss://keyed.example.com/mcp", "authentication": {"type": "none"}}})  # fmt: skip
    Grant.objects.create(server_id=server["id"], kind="api_key", secret="left-over")
    body = {"connection_details": {"authentication": {"type": "none"}}, "version": 1}

    response = admin_api.patch(f"/api/v1/servers/{server['id']}", body, format="json")

    assert response.status_code == 200, response.content
    assert not Grant.objects.filter(server_id=server["id"]).exists()
    assert AuditEvent.objects.filter(entity_type="grant", action="delete").exists()


# --- errors name what the client sent ------------------------------------------------------


@pytest.mark.parametrize("key", ["server_name", "name"])
def test_a_derived_path_collision_is_reported_on_the_name_key_sent(admin_api, key):
    _created(admin_api, {"server_name": "Git Hub", "url": "https://a.example.com/mcp"})

    response = admin_api.post(
        "/api/v1/servers", {key: "git-hub", "url": "https://b.example.com/mcp"}, format="json"
    )

    assert response.status_code == 400
    assert list(response.json()["fields"]) == [key]
    assert "/git_hub" in response.json()["fields"][key][0]


def test_a_null_alias_collision_is_reported_on_the_name_not_the_alias(admin_api):
    _created(admin_api, {"name": "Weather", "url": "https://a.example.com/mcp"})

    response = admin_api.post(
        "/api/v1/servers",
        {"name": "weather!", "alias": None, "url": "https://b.example.com/mcp"},
        format="json",
    )

    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["name"]


# --- status follows enabled ---------------------------------------------------------------


def _names(api: Any, query: str) -> set[str]:
    return {s["server_name"] for s in api.get(f"/api/v1/servers?{query}").json()["servers"]}


def test_status_active_never_lists_a_disabled_server(admin_api):
    on = _created(admin_api, {"server_name": "On", "url": "https://on.example.com/mcp"})
    off = _created(admin_api, {"server_name": "Off", "url": "https://off.example.com/mcp"})
    _created(admin_api, {"server_name": "Born off", "url": "https://b.example.com/mcp",
                         "is_enabled": False})  # fmt: skip
    _created(admin_api, {"name": "Stopped", "url": "https://s.example.com/mcp",
                         "status": "disabled"})  # fmt: skip
    McpServer.objects.filter(pk=on["id"]).update(status="error")  # the health engine's verdict
    admin_api.post(f"/api/v1/servers/{on['id']}/toggle", {"enabled": False}, format="json")
    admin_api.post(f"/api/v1/servers/{off['id']}/toggle", {"enabled": False}, format="json")

    assert _names(admin_api, "status=active") == set()
    assert _names(admin_api, "status=inactive") == {"On", "Off", "Born off", "Stopped"}


def test_toggling_sets_status_inactive_then_active(admin_api):
    server = _created(admin_api, {"server_name": "T", "url": "https://t.example.com/mcp"})
    path = f"/api/v1/servers/{server['id']}"

    off = admin_api.post(f"{path}/toggle", {"enabled": False}, format="json").json()
    assert (off["enabled"], off["status"]) == (False, "inactive")
    assert admin_api.get(path).json()["status"] == "inactive"

    on = admin_api.post(f"{path}/toggle", {"enabled": True}, format="json").json()
    assert (on["enabled"], on["status"]) == (True, "active")
    assert _names(admin_api, "status=active") == {"T"}


def test_a_check_of_a_disabled_server_leaves_it_inactive(admin_api, celery_eager, sdk_http_url):
    body = {"server_name": "Live", "is_enabled": False, "url": sdk_http_url}
    server = _created(admin_api, body)

    admin_api.post(f"/api/v1/servers/{server['id']}/refresh")

    assert McpServer.objects.get(pk=server["id"]).status == "inactive"
    assert _names(admin_api, "status=active") == set()


# --- private names are per user -----------------------------------------------------------


def test_a_user_may_reuse_another_users_private_server_name_and_path(make_client):
    alice, bob = make_client(UserFactory()), make_client(UserFactory())
    body = {"server_name": "Notes", "path": "/notes", "alias": "notes",
            "url": "https://notes.example.com/mcp"}  # fmt: skip
    _created(alice, body)

    response = bob.post("/api/v1/servers", body, format="json")

    assert response.status_code == 201, response.content
    assert [s["user_id"] for s in bob.get("/api/v1/servers").json()["servers"]] == [
        response.json()["user_id"]
    ]


def test_a_users_name_errors_never_depend_on_other_users_servers(make_client):
    alice, bob = make_client(UserFactory()), make_client(UserFactory())
    body = {"server_name": "Notes", "url": "https://notes.example.com/mcp"}
    _created(bob, body)
    alone = bob.post("/api/v1/servers", body, format="json").json()
    _created(alice, body)
    McpServer.objects.filter(owner__isnull=False).exclude(name="Notes").delete()

    beside = bob.post("/api/v1/servers", body, format="json").json()

    assert beside == alone  # bob's own duplicate only; alice's server changes nothing
