"""The seed designs' own examples, sent through the real API (issue 9's contract tests).

fixtures/seeds/ holds every JSON request and response example of seeds 000, 003 and 004, and
its README.md the table saying where each comes from and how it is sent. Every request example
must succeed as written; every response example's keys must be in our response with the same
JSON types. The registry files (seed 004's file-based config and its stored documents) must
seed through `manage.py seed_servers` and be accepted by POST /api/v1/servers.

Every test runs on the seeds' clock (2024-12-15T11:00:00Z): their tokens expire that evening.
"""

import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from credentials.models import Grant
from servers.models import McpServer
from tests.api_fixtures import client_for
from tests.factories import AdminFactory, AgentFactory, UserFactory

pytestmark = pytest.mark.django_db

SEEDS = Path(__file__).resolve().parents[1] / "fixtures" / "seeds"
REGISTRY = SEEDS / "registry"
SEED_NOW = "2024-12-15T11:00:00Z"
MISSING_ID = "999999999"


@dataclass(frozen=True)
class Example:
    """One row of fixtures/seeds/README.md's table."""

    file: str
    seed: str
    section: str
    kind: str  # request | response
    actor: str  # admin | user
    method: str
    path: str
    body: str  # a fixture file name, or ""
    first: str  # a request row sent before, or ""
    expect: str  # "2xx" or a status code

    def load(self) -> Any:
        return json.loads((SEEDS / self.file).read_text(encoding="utf-8"))


def _manifest() -> dict[str, Example]:
    rows: dict[str, Example] = {}
    for line in (SEEDS / "README.md").read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 8 or not cells[0].endswith(".json") or "/" in cells[0]:
            continue
        file, seed, section, kind, sent_as, body, first, expect = cells
        actor, method, path = sent_as.split(" ")
        body = file if body == "this file" else body
        rows[file] = Example(file, seed, section, kind, actor, method, path, body, first, expect)
    return rows


MANIFEST = _manifest()
# Responses that still differ from the seed, and why: strict, so a fix fails the run until its
# line here goes.
KNOWN_GAPS: dict[str, str] = {}


def _param(row: "Example") -> Any:
    gap = KNOWN_GAPS.get(row.file)
    marks = [pytest.mark.xfail(strict=True, reason=gap)] if gap else []
    return pytest.param(row, id=row.file, marks=marks)


REQUESTS = [_param(row) for row in MANIFEST.values() if row.kind == "request"]
RESPONSES = [_param(row) for row in MANIFEST.values() if row.kind == "response"]


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), type(value).__name__)


def mismatches(example: Any, ours: Any, where: str = "$") -> Iterator[str]:
    """Where `ours` lacks a key of `example` or has another JSON type (a null in the example
    matches any type, but its key must be there).

    Objects are compared key by key; each item of an example list must match some item of ours.
    """
    if example is None:
        return
    if json_type(example) != json_type(ours):
        yield f"{where}: {json_type(ours)} where the seed has {json_type(example)}"
    elif isinstance(example, dict):
        for key, value in example.items():
            if key not in ours:
                yield f"{where}.{key}: missing"
            else:
                yield from mismatches(value, ours[key], f"{where}.{key}")
    elif isinstance(example, list):
        for i, item in enumerate(example):
            tries = [list(mismatches(item, candidate, f"{where}[{i}]")) for candidate in ours]
            if not any(found == [] for found in tries):
                yield from tries[0] if tries else [f"{where}[{i}]: our list is empty"]


def test_mismatches_finds_missing_keys_and_other_types():
    example = {"a": 1, "b": {"c": "x"}, "d": [{"e": True}], "f": None}

    ours = {"a": 2, "b": {"c": "y", "z": 0}, "d": [{"e": 0}, {"e": False}], "f": [3]}
    assert list(mismatches(example, ours)) == []
    assert list(mismatches(example, {"a": "1", "b": {}, "d": []})) == [
        "$.a: string where the seed has number",
        "$.b.c: missing",
        "$.d[0]: our list is empty",
        "$.f: missing",
    ]
    assert list(mismatches({"n": 1}, {"n": True})) == ["$.n: boolean where the seed has number"]


def test_every_fixture_file_has_a_row_and_every_row_a_file():
    files = {path.name for path in SEEDS.glob("*.json")}
    assert files == set(MANIFEST)
    for row in MANIFEST.values():
        assert row.body in ("", *files) and row.first in ("", *files), row
        assert row.kind in ("request", "response") and row.actor in ("admin", "user"), row


# --- the world the examples are sent to -------------------------------------------------


# Examples whose keys only a checked server fills (seed 004's healthy and unhealthy entries).
NEEDS_CHECKED_SERVERS = {"004-admin-server-health.response.json"}


@dataclass
class World:
    clients: dict[str, APIClient]
    ids: dict[str, str]
    live_url: str
    refused_url: str

    def checked_servers(self) -> None:
        """A server on a real MCP peer and one nobody answers for, each checked for real.
        Made on demand: only the examples of health need them."""
        if "live_server_id" not in self.ids:
            admin = self.clients["admin"]
            self.ids["live_server_id"] = _checked_server(admin, "Live", self.live_url)
            _checked_server(admin, "Filesystem Server", self.refused_url)

    def send(self, row: Example) -> Any:
        if "{live_server_id}" in row.path or row.file in NEEDS_CHECKED_SERVERS:
            self.checked_servers()
        body = MANIFEST[row.body].load() if row.body else None
        path = row.path.format(**self.ids)
        call = getattr(self.clients[row.actor], row.method.lower())
        return call(path, body, format="json") if body is not None else call(path)


def _ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.content
    return dict(response.json())


def _github_server(admin_api: APIClient) -> str:
    """Seed 004's "GitHub Server", from its own detail document, brought to version 3
    (disabled: seed 004's audit example shows it re-enabled by the update example)."""
    body = MANIFEST["004-get-server-details.response.json"].load()
    server_id = _ok(admin_api.post("/api/v1/servers", body, format="json"), 201)["id"]
    tools = MANIFEST["004-get-server-tools.response.json"].load()["tools"]
    now = timezone.now()
    # What the health engine writes after a successful check (servers/tests test the engine
    # itself; this stdio server's npx package cannot run here).
    McpServer.objects.filter(pk=server_id).update(
        tools=tools, num_tools=len(tools), tools_last_synced_at=now, last_checked_at=now,
        last_connected_at=now, response_time_ms=125,
    )  # fmt: skip
    path = f"/api/v1/servers/{server_id}"
    _ok(admin_api.post(f"{path}/toggle", {"enabled": False}, format="json"))
    changed = admin_api.patch(path, {"tags": ["github", "git"], "version": 2}, format="json")
    assert _ok(changed)["version"] == 3
    return str(server_id)


def _created_id(admin_api: APIClient, body: dict[str, Any]) -> str:
    return str(_ok(admin_api.post("/api/v1/servers", body, format="json"), 201)["id"])


def _checked_server(admin_api: APIClient, name: str, url: str) -> str:
    """A streamable HTTP server at `url`, checked once for real."""
    body = {"server_name": name, "transport": {"type": "streamable-http", "url": url}}
    server_id = _created_id(admin_api, body)
    _ok(admin_api.post(f"/api/v1/servers/{server_id}/refresh"))
    return server_id


@pytest.fixture
def world(sdk_http_url: str, refused_url: str, celery_eager: None) -> Iterator[World]:
    with time_machine.travel(SEED_NOW, tick=True):
        admin, user = AdminFactory(username="admin"), UserFactory()
        clients = {"admin": client_for(admin), "user": client_for(user)}
        store = MANIFEST["004-store-oauth-token.request.json"].load()
        per_agent = MANIFEST["003-auth-oauth.request.json"].load()
        ids = {
            "server_id": _github_server(clients["admin"]),
            "token_id": _ok(clients["user"].post("/api/v1/tokens", store, format="json"), 201)["id"],
            "agent_id": str(AgentFactory(owner=user).pk),
            "per_agent_server_id": _created_id(clients["admin"], {**per_agent, "name": "Agents' Notion"}),
            "missing_id": MISSING_ID,
        }  # fmt: skip
        yield World(clients, ids, sdk_http_url, refused_url)


# --- the examples ------------------------------------------------------------------------


@pytest.mark.parametrize("row", REQUESTS)
def test_a_seed_request_example_succeeds_as_written(world, row):
    if row.first:
        assert world.send(MANIFEST[row.first]).status_code < 300

    response = world.send(row)

    assert 200 <= response.status_code < 300, response.content


@pytest.mark.parametrize("row", RESPONSES)
def test_our_response_has_every_key_of_a_seed_response_example(world, row):
    if row.first:
        assert world.send(MANIFEST[row.first]).status_code < 300

    response = world.send(row)

    assert str(response.status_code) == row.expect, response.content
    assert list(mismatches(row.load(), response.json())) == []


def test_seed_004_deletes_answer_204_without_a_body(world):
    for path in ("/api/v1/tokens/{token_id}", "/api/v1/servers/{server_id}"):
        actor = "user" if "tokens" in path else "admin"
        response = world.clients[actor].delete(path.format(**world.ids))

        assert response.status_code == 204
        assert response.content == b""


# --- what the examples mean, beyond their shapes -------------------------------------------


def _created(world: World, file: str) -> McpServer:
    response = world.send(MANIFEST[file])
    assert response.status_code == 201, response.content
    return McpServer.objects.get(pk=response.json()["id"])


def test_seed_000_authentication_types_become_our_auth_settings(world):
    api_key = _created(world, "000-authentication-apikey.request.json")
    bearer = _created(world, "000-authentication-bearertoken.request.json")
    none = _created(world, "000-authentication-none.request.json")

    assert (api_key.auth_type, api_key.header_name, api_key.prefix) == ("api_key", "X-Custom-API-Key", "")  # fmt: skip
    assert bearer.auth_type == "bearer"
    assert none.auth_type == "none"
    assert _credential(world, api_key)["stored"] and _credential(world, bearer)["stored"]
    assert not _credential(world, none)["stored"]


def _credential(world: World, server: McpServer) -> dict[str, Any]:
    return _ok(world.clients["admin"].get(f"/api/v1/servers/{server.pk}"))["credential"]


def test_seed_000_connection_details_keep_where_the_server_is(world):
    server = _created(world, "000-connection-details.request.json")

    assert server.transport_type == "websocket"
    assert server.url == "wss://example-downstream-mcp.com/mcp"
    assert (server.command, server.args) == ("/path/to/mcp/server/executable", ["--port", "{{port}}"])  # fmt: skip
    assert server.cwd == "/path/to/server/working/directory"


def test_seed_000_columns_are_kept(world):
    server = _created(world, "000-managed-server.request.json")

    assert (server.name, server.description) == ("Weather Service", "Current weather and forecasts")  # fmt: skip
    assert (server.transport_type, server.auth_type) == ("streamable-http", "bearer")
    assert server.mcp_options == {"timeout": 30000}
    assert server.tags == ["weather", "forecast"]
    assert (server.is_enabled, server.status, server.alias) == (True, "active", "weather_service")


SEED_003 = sorted(path.name for path in SEEDS.glob("003-auth-*.request.json"))


@pytest.mark.parametrize("file", SEED_003)
def test_seed_003_server_key_is_the_models_formula(world, file):
    body = MANIFEST[file].load()

    detail = _ok(world.send(MANIFEST[file]), 201)

    # McpServer#server_key: name.downcase.gsub(/[^a-z0-9]/, "_")
    assert detail["server_key"] == re.sub(r"[^a-z0-9]", "_", body["name"].lower())
    assert detail["server_key"] == body.get("server_key", detail["server_key"])


def test_seed_003_auth_types_and_custom_headers_are_kept(world):
    servers = {file: _created(world, file) for file in SEED_003}

    assert {s.auth_type for s in servers.values()} == {"none", "bearer", "api_key", "oauth"}
    assert servers["003-auth-api-key-header.request.json"].header_name == "X-Api-Key"
    assert servers["003-auth-bearer.request.json"].headers == {"X-Workspace": "acme"}
    assert servers["003-auth-none.request.json"].tools == ["search", "fetch"]
    oauth = servers["003-auth-oauth.request.json"]
    assert oauth.credential_mode == "per_agent"
    assert oauth.oauth_config.token_url == "https://auth.example.com/token"
    assert oauth.oauth_config.scope == "read write"
    assert oauth.oauth_client_secret.reveal() == "notion-client-secret"


def test_seed_003_agent_connection_keeps_its_token_expiry(world):
    assert world.send(MANIFEST["003-agent-connection.request.json"]).status_code == 200

    grant = Grant.objects.get(
        server_id=world.ids["per_agent_server_id"], agent_id=world.ids["agent_id"]
    )
    assert grant.expires_at == datetime(2024, 12, 15, 12, tzinfo=UTC)


def test_tool_functions_naming_other_tools_than_the_list_are_refused(admin_api):
    body = json.loads((REGISTRY / "github_server.json").read_text(encoding="utf-8"))
    body["tools"] = json.dumps([{"name": "delete_repo"}])

    response = admin_api.post("/api/v1/servers", body, format="json")

    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["tool_functions"]


# --- registry files ----------------------------------------------------------------------

REGISTRY_FILES = sorted(path.name for path in REGISTRY.glob("*.json"))


def test_every_registry_file_has_a_row():
    readme = (SEEDS / "README.md").read_text(encoding="utf-8")
    for name in REGISTRY_FILES:
        assert f"| registry/{name} |" in readme


@pytest.mark.parametrize("name", REGISTRY_FILES)
def test_a_registry_file_seeds_through_seed_servers(name, tmp_path):
    AdminFactory(username="root")
    shutil.copy(REGISTRY / name, tmp_path / name)
    out = StringIO()

    call_command("seed_servers", "--servers-dir", str(tmp_path), "--admin-user", "root", stdout=out)

    assert f"{name}: created" in out.getvalue()
    assert "1 created" in out.getvalue()


@pytest.mark.parametrize("name", REGISTRY_FILES)
def test_a_registry_file_is_accepted_by_the_api(name, admin_api):
    body = json.loads((REGISTRY / name).read_text(encoding="utf-8"))
    body.setdefault("server_name", Path(name).stem)

    response = admin_api.post("/api/v1/servers", body, format="json")

    assert response.status_code == 201, response.content


def test_the_whole_registry_folder_seeds_at_once():
    AdminFactory(username="root")
    out = StringIO()

    call_command("seed_servers", "--servers-dir", str(REGISTRY), "--admin-user", "root", stdout=out)

    assert f"{len(REGISTRY_FILES)} created" in out.getvalue()
    github = McpServer.objects.get(name="github")
    assert github.auth_type == "oauth" and github.transport_type == "stdio"
    analytics = McpServer.objects.get(name="custom_analytics")
    assert analytics.scope == "private_user"
    assert analytics.owner == get_user_model().objects.get(username="root")
