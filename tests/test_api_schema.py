"""Property-based run of schemathesis against /api/schema/: no input may cause a 5xx.

Below it, plain tests that the documented response shapes are the real ones: live responses
of the typed endpoints (and their 4xx error bodies) validate against the schema, with no
undocumented field allowed.

Bounded on purpose (a few examples per operation) so it runs in seconds in the suite; run it
with more examples by hand when changing the API (SCHEMATHESIS_EXAMPLES=50).
"""

import json
import os
from typing import Any

import jsonschema
import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from servers.models import McpServer
from tests.factories import AgentFactory, McpServerFactory, TokenFactory

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "3"))


def _load_schema() -> schemathesis.schemas.BaseSchema:
    """The served OpenAPI document, generated in-process (no DB or HTTP at collection)."""
    document = json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(public=True)))
    loaded = schemathesis.openapi.from_dict(document)
    loaded.app = get_wsgi_application()
    return loaded


schema = _load_schema()


@pytest.fixture
def seeded(db, settings, admin):
    settings.ALLOWED_HOSTS = ["*"]
    # Generous throttles: this test is many writes by one admin within a second.
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"writes": "100000/min", "token_generation": "100000/min"},
    }
    # A few rows so that small ids exist and detail paths do not only 404.
    McpServerFactory.create_batch(3)
    AgentFactory.create_batch(2, owner=admin)
    TokenFactory.create_batch(2, user=admin)
    # As Django's test client does: the WSGI handler would otherwise close the test's
    # connection at the end of each request (and with it the test transaction).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_it_never_answers_5xx(case, seeded, admin_api):
    token = admin_api._credentials["HTTP_AUTHORIZATION"]
    response = case.call(headers={"Authorization": token})
    case.validate_response(response, checks=[not_a_server_error])


# --- Plain checks that the documented shapes are the real ones ---------------------------

DOCUMENT = json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(public=True)))


def _resolve(node: Any) -> Any:
    """`node` with every $ref inlined and OpenAPI 3.0's nullable turned into JSON Schema.

    Objects that list properties get additionalProperties false unless they say otherwise, so
    a field the API returns but the schema does not name fails too.
    """
    if isinstance(node, list):
        return [_resolve(item) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _resolve(DOCUMENT["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]])
    out = {key: _resolve(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable"):
        out = {"anyOf": [out, {"type": "null"}]}
    elif out.get("type") == "object" and "properties" in out:
        out.setdefault("additionalProperties", False)
    return out


def _response_schema(path: str, method: str, code: int = 200) -> Any:
    response = DOCUMENT["paths"][path][method]["responses"][str(code)]
    return _resolve(response["content"]["application/json"]["schema"])


def _check(response: Any, path: str, method: str) -> Any:
    """Validate a live response's body against what the schema documents for it."""
    body = response.json()
    schema = _response_schema(path, method, response.status_code)
    jsonschema.validate(body, schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    return body


def test_mcp_config_schema_describes_entries_and_missing_credentials() -> None:
    schema = _response_schema("/api/v1/agents/{id}/mcp-config", "get")
    assert set(schema["properties"]) == {"mcpServers", "missing_credentials"}
    entry = schema["properties"]["mcpServers"]["additionalProperties"]
    assert {"type", "url", "headers", "command", "args", "env"} <= set(entry["properties"])
    missing = schema["properties"]["missing_credentials"]["items"]
    assert set(missing["properties"]) == {"server_id", "server_key", "server_name", "reason"}


def test_stats_schema_lists_every_stats_field(admin_api: Any) -> None:
    McpServerFactory()
    body = _check(
        admin_api.get("/api/v1/admin/servers/stats"), "/api/v1/admin/servers/stats", "get"
    )
    schema = _response_schema("/api/v1/admin/servers/stats", "get")
    assert set(schema["properties"]) == set(body) == set(schema["required"])


def test_documented_shapes_match_live_responses(admin_api: Any, admin: Any) -> None:
    """Each typed endpoint, called for real, answers what the schema says (and 4xx the error)."""
    remote, toggled = McpServerFactory(), McpServerFactory()
    McpServerFactory(auth_type=McpServer.AuthType.BEARER)  # no secret: a missing credential
    McpServerFactory(
        name="Local", transport_type=McpServer.Transport.STDIO, url="", command="npx",
        args=["-y", "pkg"], env={"KEY": "v"},
    )  # fmt: skip
    agent = AgentFactory(owner=admin)
    token = TokenFactory(user=admin)
    calls = [
        ("get", "/api/v1/servers", "/api/v1/servers", None),
        ("post", f"/api/v1/servers/{toggled.pk}/toggle", "/api/v1/servers/{id}/toggle",
         {"enabled": False}),
        ("post", f"/api/v1/servers/{toggled.pk}/toggle", "/api/v1/servers/{id}/toggle", {}),
        ("get", f"/api/v1/servers/{remote.pk}/tools", "/api/v1/servers/{id}/tools", None),
        ("get", "/api/v1/servers/999999", "/api/v1/servers/{id}", None),
        ("get", "/api/v1/agents", "/api/v1/agents", None),
        ("get", f"/api/v1/agents/{agent.pk}", "/api/v1/agents/{id}", None),
        ("put", f"/api/v1/agents/{agent.pk}/connections/{remote.pk}",
         "/api/v1/agents/{id}/connections/{server_id}", {"access_token": "t"}),
        ("get", f"/api/v1/agents/{agent.pk}/mcp-config", "/api/v1/agents/{id}/mcp-config", None),
        ("get", f"/api/v1/agents/{agent.pk}/tools", "/api/v1/agents/{id}/tools", None),
        ("get", "/api/v1/tokens", "/api/v1/tokens", None),
        ("get", f"/api/v1/tokens/{token.pk}", "/api/v1/tokens/{id}", None),
        ("post", "/api/v1/tokens/generate", "/api/v1/tokens/generate",
         {"requested_scopes": ["read:servers"], "expires_in_hours": 1}),
        ("get", "/api/v1/admin/servers", "/api/v1/admin/servers", None),
        ("get", "/api/v1/admin/servers?page=0", "/api/v1/admin/servers", None),
        ("get", "/api/v1/admin/servers/health", "/api/v1/admin/servers/health", None),
        ("get", "/api/v1/admin/audit", "/api/v1/admin/audit", None),
    ]  # fmt: skip
    for method, url, path, data in calls:
        response = getattr(admin_api, method)(url, data, format="json")
        assert (
            response.status_code in DOCUMENT["paths"][path][method]["responses"]
            or str(response.status_code) in DOCUMENT["paths"][path][method]["responses"]
        ), (url, response.status_code)
        _check(response, path, method)
    config = admin_api.get(f"/api/v1/agents/{agent.pk}/mcp-config").json()
    assert config["missing_credentials"] and {"url", "command"} <= {
        key for entry in config["mcpServers"].values() for key in entry
    }


def test_auth_token_endpoints_answer_their_documented_shapes(admin: Any, client: Any) -> None:
    pair = _check(
        client.post(
            "/api/v1/auth/token",
            {"username": admin.username, "password": "pw-for-tests-only"},
            content_type="application/json",
        ),
        "/api/v1/auth/token", "post",
    )  # fmt: skip
    _check(
        client.post(
            "/api/v1/auth/token/refresh", {"refresh": pair["refresh"]},
            content_type="application/json",
        ),
        "/api/v1/auth/token/refresh", "post",
    )  # fmt: skip
    _check(
        client.post(
            "/api/v1/auth/token/refresh", {"refresh": "nope"}, content_type="application/json"
        ),
        "/api/v1/auth/token/refresh", "post",
    )  # fmt: skip
