"""mcp-config?client=...: each client's file, checked against the shape its documentation
gives (tests/fixtures/client_configs/<client>.json names the source and holds its example)."""

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from servers.services import CLIENTS, client_config_render
from tests.factories import AgentFactory, GrantFactory, McpServerFactory

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "client_configs"
TYPES = {"string": str, "list": list, "dict": dict}

# The generic document mcp_config_build returns: one server of each transport.
GENERIC: dict[str, Any] = {
    "mcpServers": {
        "local": {
            "type": "stdio",
            "command": "npx",
            "args": ["-y", "srv"],
            "env": {"TOKEN": "env-secret"},
        },
        "web": {
            "type": "http",
            "url": "https://mcp.example.com/mcp",
            "headers": {"Authorization": "Bearer tok 1"},
        },
        "events": {"type": "sse", "url": "http://127.0.0.1:9/sse", "headers": {}},
        "socket": {"type": "ws", "url": "wss://ws.example.com/mcp", "headers": {}},
    },
    "missing_credentials": [{"server_key": "later", "reason": "not connected"}],
}


def fixture(client: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{client}.json").read_text())


def shape_errors(spec: dict[str, Any], document: dict[str, Any]) -> list[str]:
    """Where `document` departs from the documented shape (empty when it conforms)."""
    servers = document.get(spec["top_level_key"])
    if not isinstance(servers, dict):
        return [f"no {spec['top_level_key']} object"]
    errors = []
    for name, entry in servers.items():
        rules = spec["stdio"] if "command" in entry else spec["remote"]
        if rules is None:
            errors.append(f"{name}: remote entries are not part of this client's file")
            continue
        allowed = {**rules["required"], **rules["optional"]}
        errors += [f"{name}: unknown key {k}" for k in entry if k not in allowed]
        errors += [f"{name}: lacks {k}" for k in rules["required"] if k not in entry]
        for key, want in allowed.items():
            if key not in entry:
                continue
            ok = (
                entry[key] in want
                if isinstance(want, list)
                else isinstance(entry[key], TYPES[want])
            )
            errors += [] if ok else [f"{name}: {key}={entry[key]!r} is not {want}"]
    return errors


def rendered_document(result: dict[str, Any]) -> dict[str, Any]:
    """The file as the client reads it: parsed from the text handed out, not the wrapper."""
    if result["syntax"] == "toml":
        return tomllib.loads(result["content"])
    document = json.loads(result["content"])
    assert document == result["config"]
    return document


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_each_client_has_a_fixture_naming_its_source(client):
    spec = fixture(client)
    assert spec["source"].startswith(("https://", "docs/"))
    assert spec["file_name"] == CLIENTS[client].file_name


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_the_documented_example_meets_the_fixture_shape(client):
    """The validator itself: the client's own example passes it."""
    spec = fixture(client)
    example = tomllib.loads(spec["example_toml"]) if "example_toml" in spec else spec["example"]
    assert shape_errors(spec, example) == []


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_the_validator_refuses_an_entry_the_client_does_not_document(client):
    spec = fixture(client)
    bad = {spec["top_level_key"]: {"x": {"command": "npx", "transport": "carrier-pigeon"}}}
    assert shape_errors(spec, bad) != []


@pytest.mark.parametrize("bridge", [False, True])
@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_each_client_output_meets_its_documented_shape(client, bridge):
    result = client_config_render(config=GENERIC, client=client, bridge=bridge)
    assert shape_errors(fixture(client), rendered_document(result)) == []
    assert result["missing_credentials"] == GENERIC["missing_credentials"]


@pytest.mark.parametrize(
    ("client", "listed", "unsupported"),
    [
        ("claude-code", {"local", "web", "events"}, {"socket"}),
        ("vscode", {"local", "web", "events"}, {"socket"}),
        ("cursor", {"local", "web", "events"}, {"socket"}),
        ("windsurf", {"local", "web", "events"}, {"socket"}),
        ("codex", {"local", "web"}, {"events", "socket"}),
        ("claude-desktop", {"local"}, {"web", "events", "socket"}),
        ("generic", {"local", "web", "events", "socket"}, set()),
    ],
)
def test_what_a_client_cannot_express_is_listed_with_the_reason(client, listed, unsupported):
    result = client_config_render(config=GENERIC, client=client, bridge=False)
    servers = tomllib.loads(result["content"])["mcp_servers"] if client == "codex" else (
        result["config"]["servers" if client == "vscode" else "mcpServers"]
    )  # fmt: skip
    assert set(servers) == listed
    assert {u["server_key"] for u in result["unsupported"]} == unsupported
    assert all(u["reason"] for u in result["unsupported"])


def test_vscode_uses_its_own_top_level_key_and_types():
    config = client_config_render(config=GENERIC, client="vscode", bridge=False)["config"]
    assert set(config) == {"servers", "inputs"}
    assert config["servers"]["web"]["type"] == "http"
    assert config["servers"]["events"] == {"type": "sse", "url": "http://127.0.0.1:9/sse"}


def test_windsurf_writes_server_url_not_url():
    config = client_config_render(config=GENERIC, client="windsurf", bridge=False)["config"]
    assert config["mcpServers"]["web"] == {
        "serverUrl": "https://mcp.example.com/mcp",
        "headers": {"Authorization": "Bearer tok 1"},
    }


def test_codex_gets_toml_with_http_headers_and_env():
    result = client_config_render(config=GENERIC, client="codex", bridge=False)
    parsed = tomllib.loads(result["content"])["mcp_servers"]
    assert result["config"] is None
    assert parsed["web"] == {
        "url": "https://mcp.example.com/mcp",
        "http_headers": {"Authorization": "Bearer tok 1"},
    }
    assert parsed["local"] == {
        "command": "npx",
        "args": ["-y", "srv"],
        "env": {"TOKEN": "env-secret"},
    }


def test_codex_toml_survives_hostile_names_and_values():
    nasty = 'a"b\\c\n\x7f\x01 é 😀'
    config = {
        "mcpServers": {"we ird.key": {"type": "stdio", "command": nasty, "args": [nasty],
                                      "env": {"K=1 \"": nasty}}},
        "missing_credentials": [],
    }  # fmt: skip
    parsed = tomllib.loads(
        client_config_render(config=config, client="codex", bridge=False)["content"]
    )
    assert parsed["mcp_servers"]["we ird.key"] == {
        "command": nasty,
        "args": [nasty],
        "env": {'K=1 "': nasty},
    }


def test_claude_desktop_bridges_remote_servers_only_when_enabled():
    result = client_config_render(config=GENERIC, client="claude-desktop", bridge=True)
    servers = result["config"]["mcpServers"]
    assert servers["web"] == {
        "command": "npx",
        "args": ["-y", "mcp-remote", "https://mcp.example.com/mcp", "--transport", "http-only",
                 "--header", "Authorization:${MCP_REMOTE_HEADER_0}"],
        "env": {"MCP_REMOTE_HEADER_0": "Bearer tok 1"},
    }  # fmt: skip
    assert servers["events"]["args"][-2:] == ["sse-only", "--allow-http"]
    assert [u["server_key"] for u in result["unsupported"]] == ["socket"]


# --- the endpoint ------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_endpoint_refuses_an_unknown_client(user_api, user):
    agent = AgentFactory(owner=user)
    response = user_api.get(f"/api/v1/agents/{agent.pk}/mcp-config?client=emacs")
    assert response.status_code == 400
    assert response.json()["error"] == "unknown_client"
    assert "claude-code" in response.json()["message"]


@pytest.mark.django_db
def test_the_endpoint_without_client_keeps_the_generic_document(user_api, user):
    agent = AgentFactory(owner=user)
    McpServerFactory(name="Open", transport_type="websocket", url="wss://ws.example.com/mcp")
    body = user_api.get(f"/api/v1/agents/{agent.pk}/mcp-config").json()
    assert set(body) == {"mcpServers", "missing_credentials"}
    assert body["mcpServers"]["open"]["type"] == "ws"


@pytest.mark.django_db
def test_the_endpoint_renders_vscode_with_resolved_credentials(user_api, user):
    agent = AgentFactory(owner=user)
    GrantFactory(server=McpServerFactory(name="Wiki", auth_type="bearer"), secret="w-tok")
    McpServerFactory(name="Open", transport_type="websocket", url="wss://ws.example.com/mcp")
    response = user_api.get(f"/api/v1/agents/{agent.pk}/mcp-config?client=vscode")
    body = response.json()
    assert response["Cache-Control"] == "no-store"
    assert body["file_name"] == ".vscode/mcp.json"
    assert body["config"]["servers"]["wiki"]["headers"] == {"Authorization": "Bearer w-tok"}
    assert [u["server_key"] for u in body["unsupported"]] == ["open"]


@pytest.mark.django_db
def test_the_endpoint_bridges_for_claude_desktop_when_the_operator_enables_it(
    user_api, user, settings
):
    agent = AgentFactory(owner=user)
    McpServerFactory(name="Remote")
    url = f"/api/v1/agents/{agent.pk}/mcp-config?client=claude-desktop"
    assert user_api.get(url).json()["config"]["mcpServers"] == {}

    settings.MCPCONTROL_CONFIG_BRIDGE_REMOTE = True
    assert user_api.get(url).json()["config"]["mcpServers"]["remote"]["command"] == "npx"


@pytest.mark.django_db
def test_the_endpoint_hides_another_users_agent_for_every_client(user_api):
    response = user_api.get(f"/api/v1/agents/{AgentFactory().pk}/mcp-config?client=codex")
    assert response.status_code == 404


# Gateway mode (?mode=gateway&client=...): the one gateway entry in the client's own format.
GATEWAY_URL = "https://mcp.example.org/mcp/agents/{id}"


def _gateway(user_api, user, settings, client: str, **headers: str) -> tuple[Any, Any]:
    settings.MCPCONTROL_PUBLIC_URL = "https://mcp.example.org"
    agent = AgentFactory(owner=user)
    GrantFactory(server=McpServerFactory(name="Wiki", auth_type="bearer"), secret="up-secret")
    McpServerFactory(name="Local", transport_type="stdio", url="", command="npx",
                     env={"TOKEN": "env-secret"})  # fmt: skip
    response = user_api.get(
        f"/api/v1/agents/{agent.pk}/mcp-config?mode=gateway&client={client}", **headers
    )
    assert response.status_code == 200, response.content
    return agent, response


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("client", "entry"),
    [
        ("vscode", lambda d: d["servers"]["mcpcontrol"]),
        ("claude-code", lambda d: d["mcpServers"]["mcpcontrol"]),
        ("cursor", lambda d: d["mcpServers"]["mcpcontrol"]),
        ("windsurf", lambda d: d["mcpServers"]["mcpcontrol"]),
        ("generic", lambda d: d["mcpServers"]["mcpcontrol"]),
        ("codex", lambda d: d["mcp_servers"]["mcpcontrol"]),
    ],
)
def test_gateway_mode_renders_the_one_gateway_entry_for_each_client(
    user_api, user, settings, client, entry
):
    agent, response = _gateway(user_api, user, settings, client, HTTP_X_AGENT_KEY="mcpa_k1")
    body = response.json()
    text = response.content.decode()
    assert "up-secret" not in text and "env-secret" not in text
    assert response["Cache-Control"] == "no-store"
    document = rendered_document(body)
    assert shape_errors(fixture(client), document) == []
    assert list(document["servers" if client == "vscode" else (
        "mcp_servers" if client == "codex" else "mcpServers")]) == ["mcpcontrol"]  # fmt: skip
    got = entry(document)
    assert got["serverUrl" if client == "windsurf" else "url"] == GATEWAY_URL.format(id=agent.pk)
    headers = got["http_headers" if client == "codex" else "headers"]
    assert headers == {"Authorization": "Bearer mcpa_k1"}
    assert body["unsupported"] == [] and body["missing_credentials"] == []
    if client in ("vscode", "claude-code"):
        assert got["type"] == "http"


@pytest.mark.django_db
def test_gateway_mode_for_claude_desktop_bridges_or_says_why_not(user_api, user, settings):
    agent, response = _gateway(user_api, user, settings, "claude-desktop")
    body = response.json()
    assert body["config"]["mcpServers"] == {}
    assert [u["server_key"] for u in body["unsupported"]] == ["mcpcontrol"]

    settings.MCPCONTROL_CONFIG_BRIDGE_REMOTE = True
    url = f"/api/v1/agents/{agent.pk}/mcp-config?mode=gateway&client=claude-desktop"
    response = user_api.get(url)
    entry = response.json()["config"]["mcpServers"]["mcpcontrol"]
    assert entry["command"] == "npx"
    assert GATEWAY_URL.format(id=agent.pk) in entry["args"]
    assert "up-secret" not in response.content.decode()


@pytest.mark.django_db
def test_gateway_mode_refuses_an_unknown_client(user_api, user):
    agent = AgentFactory(owner=user)
    response = user_api.get(f"/api/v1/agents/{agent.pk}/mcp-config?mode=gateway&client=emacs")
    assert response.status_code == 400
    assert response.json()["error"] == "unknown_client"
