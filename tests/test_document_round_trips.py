"""Round trips of the server document (issue 9): what we write out reads back as the same thing.

- API: a GET detail body PATCHed back unchanged changes nothing (no version bump, no audit).
- Registry files: seed_servers → export_servers → seed_servers gives the same files.
- Client configs: import_mcp_config → an agent's mcp-config keeps every server.
"""

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from audit.models import AuditEvent
from credentials.models import Grant
from servers.models import McpServer
from tests.factories import AgentFactory, GroupFactory, UserFactory

pytestmark = pytest.mark.django_db

REGISTRY = Path(__file__).resolve().parents[1] / "fixtures" / "seeds" / "registry"

CATALOG = {
    "num_stars": 250, "is_python": False, "license": "MIT", "auth_provider": "github",
    "organization_id": "674e1a2b3c4d5e6f7a8b9c0f", "supported_transports": ["streamable-http"],
}  # fmt: skip
VARS = {"GITHUB_TOKEN": {"title": "GitHub token", "description": "repo access", "required": True}}
OAUTH = {
    "authorization_url": "https://auth.example.com/authorize",
    "token_url": "https://auth.example.com/token", "client_id": "client-1",
    "client_secret": "client-secret-1", "scope": "repo read:user",
    "redirect_uri": "https://console.example.com/oauth/callback",
    "grant_types_supported": ["authorization_code", "refresh_token"],
    "revocation_endpoint": "https://auth.example.com/revoke",
}  # fmt: skip
TRANSPORTS = {
    "stdio": {"type": "stdio", "command": "npx", "args": ["-y", "server-github"],
              "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": "${GITHUB_TOKEN}", "LOG": "debug"},
              "cwd": "/srv/github", "stderr": "capture"},
    "sse": {"type": "sse", "url": "https://sse.example.com/sse", "headers": {"X-Team": "core"}},
    "streamable-http": {"type": "streamable-http", "url": "https://http.example.com/mcp",
                        "headers": {"X-Api-Version": "2", "X-Token": "${GITHUB_TOKEN}"}},
    "websocket": {"type": "websocket", "url": "wss://ws.example.com/mcp",
                  "headers": {"X-Client": "mcpcontrol"}},
}  # fmt: skip
AUTH = {
    "none": {"auth_type": "none"},
    "api_key": {"auth_type": "api_key", "auth_header_name": "X-Api-Key", "auth_prefix": "Key ",
                "auth_token": "k3y-value"},
    "bearer": {"auth_type": "bearer", "auth_token": "bearer-value", "credential_mode": "shared"},
    "oauth": {"requires_oauth": True, "oauth": OAUTH,
              "oauth_headers": {"Accept": "application/json"}},
}  # fmt: skip


def full_document(transport: str, auth: str, **extra: Any) -> dict[str, Any]:
    """A document using every part of the codec: transport, auth, catalog, options, tools."""
    return {
        "server_name": f"{transport} {auth}", "description": "Round trip", "alias": None,
        "tags": ["a", "b"], "icon_path": "/icons/x.svg", "transport": TRANSPORTS[transport],
        **AUTH[auth], **CATALOG, "custom_user_vars": VARS, "startup": False, "chat_menu": False,
        "timeout": 20000, "init_timeout": 40000, "server_instructions": "Be careful.",
        "mcp_options": {"retries": 2}, "schema_version": "1.0.0",
        "tool_list": [{"name": "create_issue", "description": "Create an issue",
                       "inputSchema": {"type": "object", "properties": {}}}],
        **extra,
    }  # fmt: skip


def _created(api: Any, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post("/api/v1/servers", body, format="json")
    assert response.status_code == 201, response.content
    return dict(response.json())


def assert_patch_back_is_a_no_op(api: Any, server_id: str) -> None:
    detail = api.get(f"/api/v1/servers/{server_id}").json()
    audit_rows = AuditEvent.objects.count()
    grants = list(Grant.objects.filter(server_id=server_id).values_list("pk", "secret"))

    response = api.patch(f"/api/v1/servers/{server_id}", detail, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["version"] == detail["version"]
    assert AuditEvent.objects.count() == audit_rows
    assert list(Grant.objects.filter(server_id=server_id).values_list("pk", "secret")) == grants
    again = api.get(f"/api/v1/servers/{server_id}").json()
    assert {k: v for k, v in again.items() if k != "health"} == {
        k: v for k, v in detail.items() if k != "health"
    }


@pytest.mark.parametrize("transport", list(TRANSPORTS))
def test_a_detail_patched_back_changes_nothing_for_every_transport(admin_api, transport):
    server = _created(admin_api, full_document(transport, "oauth"))

    assert_patch_back_is_a_no_op(admin_api, server["id"])


@pytest.mark.parametrize("auth", list(AUTH))
def test_a_detail_patched_back_changes_nothing_for_every_auth_type(admin_api, auth):
    server = _created(admin_api, full_document("streamable-http", auth))

    assert_patch_back_is_a_no_op(admin_api, server["id"])


def test_a_per_agent_group_server_patched_back_changes_nothing(admin_api):
    owner, group = UserFactory(), GroupFactory()
    agent = AgentFactory(owner=owner)
    body = full_document(
        "sse", "api_key", credential_mode="per_agent", probe_agent_id=str(agent.pk),
        scope="shared_user", user_id=str(owner.pk), group_id=str(group.pk), alias="team-sse",
        path="/team-sse",
    )  # fmt: skip
    body.pop("auth_token")  # per agent: each agent brings its own

    assert_patch_back_is_a_no_op(admin_api, _created(admin_api, body)["id"])


def test_a_seed_004_document_patched_back_changes_nothing(admin_api):
    body = json.loads((REGISTRY / "github_server.json").read_text(encoding="utf-8"))

    assert_patch_back_is_a_no_op(admin_api, _created(admin_api, body)["id"])


def test_a_users_own_server_patched_back_by_the_user_changes_nothing(user_api):
    server = _created(user_api, full_document("streamable-http", "bearer"))

    assert_patch_back_is_a_no_op(user_api, server["id"])


def test_a_checked_server_patched_back_changes_nothing(admin_api, celery_eager, sdk_http_url):
    """Runtime fields (tools, status, timings) come back in the body and are ignored."""
    body = {"server_name": "Live", "transport": {"type": "streamable-http", "url": sdk_http_url}}
    server = _created(admin_api, body)
    assert admin_api.post(f"/api/v1/servers/{server['id']}/refresh").status_code == 200

    assert McpServer.objects.get(pk=server["id"]).tools  # the check stored what it found
    assert_patch_back_is_a_no_op(admin_api, server["id"])


# --- registry files: seed → export → seed -------------------------------------------------


def seed(directory: Path, *extra: str) -> str:
    out = StringIO()
    call_command(
        "seed_servers", "--servers-dir", str(directory), "--admin-user", "root", *extra, stdout=out
    )
    return out.getvalue()


def export(directory: Path) -> dict[str, Any]:
    call_command("export_servers", "--out", str(directory), stdout=StringIO())
    return {path.name: json.loads(path.read_text()) for path in sorted(directory.glob("*.json"))}


@pytest.fixture
def root(db: Any) -> Any:
    from tests.factories import AdminFactory

    return AdminFactory(username="root")


@pytest.fixture
def rich_fleet(root: Any, admin_api: Any) -> None:
    """The seed's registry files, and one server per transport and auth type from the API."""
    assert "3 created" in seed(REGISTRY)
    for transport in TRANSPORTS:
        _created(admin_api, full_document(transport, "oauth", scope="private_user"))
    for auth in AUTH:
        _created(admin_api, full_document("streamable-http", auth, tags=[auth]))


def test_seeding_an_export_again_changes_nothing(rich_fleet, tmp_path):
    exported = export(tmp_path)

    output = seed(tmp_path, "--force")

    assert f"0 created, 0 updated, {len(exported)} unchanged, 0 failed" in output


def test_registry_files_seed_export_seed_is_identity(rich_fleet, tmp_path):
    first = export(tmp_path / "first")
    McpServer.objects.all().delete()

    assert f"{len(first)} created" in seed(tmp_path / "first")
    second = export(tmp_path / "second")

    assert second == first


def test_an_export_keeps_every_field_of_a_seed_004_registry_file(root, tmp_path):
    seed(REGISTRY)

    exported = export(tmp_path)["github_server.json"]

    source = json.loads((REGISTRY / "github_server.json").read_text(encoding="utf-8"))
    for key in ("startup", "icon_path", "timeout", "init_timeout", "chat_menu", "scope",
                "server_instructions", "custom_user_vars", "oauth_headers", "organization_id"):  # fmt: skip
        assert exported[key] == source[key], key
    assert exported["transport"] == {**source["transport"], "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": ""}}  # fmt: skip
    assert exported["oauth"] == {k: v for k, v in source["oauth"].items() if k != "client_secret"}


# --- client configs: import → mcp-config ----------------------------------------------------

CLIENT_CONFIG = {
    "mcpServers": {
        "github": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"],
                   "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": "ghp_example"}},
        "filesystem": {"type": "stdio", "command": "npx",
                       "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"]},
        "linear": {"type": "http", "url": "https://mcp.linear.app/mcp",
                   "headers": {"Authorization": "Bearer lin_example"}},
        "sentry": {"type": "sse", "url": "https://mcp.sentry.dev/sse"},
        "realtime": {"type": "websocket", "url": "wss://realtime.example.com/mcp"},
    }
}  # fmt: skip


def test_an_imported_client_config_comes_back_whole_in_mcp_config(tmp_path, make_client):
    path = tmp_path / ".mcp.json"
    path.write_text(json.dumps(CLIENT_CONFIG))
    call_command("import_mcp_config", str(path), stdout=StringIO())
    agent = AgentFactory()

    config = make_client(agent.owner).get(f"/api/v1/agents/{agent.pk}/mcp-config").json()

    assert config["missing_credentials"] == []
    servers = config["mcpServers"]
    assert set(servers) == set(CLIENT_CONFIG["mcpServers"])
    for key, entry in CLIENT_CONFIG["mcpServers"].items():
        for field in ("command", "args", "url", "env", "headers"):
            assert servers[key].get(field) == entry.get(field, servers[key].get(field)), (key, field)  # fmt: skip
    assert servers["github"]["type"] == servers["filesystem"]["type"] == "stdio"
    assert (servers["linear"]["type"], servers["sentry"]["type"]) == ("http", "sse")


def test_an_imported_key_outside_seed_003s_alphabet_comes_back_as_its_server_key(
    tmp_path, make_client
):
    """Config keys are seed 003's server_key (name.downcase.gsub(/[^a-z0-9]/, "_")), the same
    key as in the mcp__<key>__<tool> tool names: "Brave-Search" is listed as brave_search."""
    path = tmp_path / ".mcp.json"
    entry = {"type": "http", "url": "https://brave.example.com/mcp"}
    path.write_text(json.dumps({"mcpServers": {"Brave-Search": entry}}))
    call_command("import_mcp_config", str(path), stdout=StringIO())
    agent = AgentFactory()

    config = make_client(agent.owner).get(f"/api/v1/agents/{agent.pk}/mcp-config").json()

    assert config["mcpServers"] == {"brave_search": {**entry, "headers": {}}}
