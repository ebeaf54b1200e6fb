"""Hostile JSON bodies get a 400 with our error body, never a 500 or a partial write.

The parser refuses them once for every endpoint: deep nesting (RecursionError in the
decoder), numbers that overflow to infinity, and strings that PostgreSQL cannot store (NUL,
lone UTF-16 surrogates) wherever they sit, map keys included.
"""

import pytest

from audit.models import AuditEvent
from servers.models import McpServer
from tests.factories import McpServerFactory

pytestmark = pytest.mark.django_db

MAX_DEPTH = 64  # mcpcontrol.api.parsers.MAX_DEPTH (importing it first here is an import cycle)

URL = '"https://weather.example.com/mcp"'


def _post(client, path, raw):
    return client.generic("POST", path, raw.encode("utf-8"), content_type="application/json")


def _create(client, extra):
    """POST a server whose body has `extra` (raw JSON members) after a valid name and URL."""
    return _post(client, "/api/v1/servers", f'{{"server_name": "Weather", "url": {URL}{extra}}}')


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param(', "tags": ' + "[" * 1000 + "]" * 1000, id="nested-1000"),
        pytest.param(', "tags": ' + "[" * 100_000 + "]" * 100_000, id="nested-100000"),
        pytest.param(', "env": ' + '{"a": ' * 200 + "1" + "}" * 200, id="nested-objects-200"),
        pytest.param(', "mcp_options": ' + '{"a": ' * 900 + "1" + "}" * 900, id="free-map-900"),
        pytest.param(', "mcp_options": {"a": 1e999999}', id="overflow-to-infinity"),
        pytest.param(', "custom_user_vars": {"a": [-1e999999]}', id="overflow-in-a-list"),
        pytest.param(', "timeout_ms": 1e999999', id="overflow-to-infinity-int-field"),
        pytest.param(', "timeout_ms": -1e999999', id="overflow-to-minus-infinity"),
        pytest.param(', "timeout_ms": NaN', id="nan"),
        pytest.param(', "timeout_ms": Infinity', id="infinity"),
        pytest.param(', "env": {"A\\u0000B": "x"}', id="nul-in-key"),
        pytest.param(', "env": {"A": "x\\u0000y"}', id="nul-in-value"),
        pytest.param(', "headers": {"\\ud800": "x"}', id="lone-high-surrogate-in-key"),
        pytest.param(', "description": "\\udc00"', id="lone-low-surrogate-in-value"),
        pytest.param(', "mcp_options": {"k": "\\udbff"}', id="lone-surrogate-in-free-map"),
        pytest.param(', "tags": ["ok", ["deeper", "x\\u0000"]]', id="nul-in-nested-list"),
    ],
)
def test_it_refuses_hostile_json_with_400_and_writes_nothing(user_api, extra):
    response = _create(user_api, extra)

    assert response.status_code == 400, response.content[:300]
    assert response.json()["error"] in {"parse_error", "validation_error"}
    assert response.json()["message"]
    assert not McpServer.objects.exists()
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize(("chain", "status"), [(MAX_DEPTH - 1, 201), (MAX_DEPTH, 400)])
def test_it_bounds_the_depth_at_max_depth(user_api, chain, status):
    """The body is level 1, so a chain of MAX_DEPTH - 1 maps inside it is just within."""
    options = '{"a": ' * (chain - 1) + "{}" + "}" * (chain - 1)

    response = _create(user_api, f', "mcp_options": {options}')

    assert response.status_code == status, response.content[:300]


def test_it_accepts_astral_characters(user_api):
    """A surrogate *pair* is one valid character, not a lone surrogate."""
    body = '{"server_name": "Weather \\ud83c\\udf26", "url": ' + URL + ', "description": "ok"}'

    response = _post(user_api, "/api/v1/servers", body)

    assert response.status_code == 201, response.content[:300]
    assert McpServer.objects.get().name == "Weather \U0001f326"


def test_it_refuses_a_nul_in_a_patch_map_key(user_api, user):
    server = McpServerFactory(owner=user, scope=McpServer.Scope.PRIVATE_USER)
    body = f'{{"version": {server.version}, "headers": {{"X-A\\u0000": "v"}}}}'

    response = user_api.generic(
        "PATCH", f"/api/v1/servers/{server.pk}", body.encode(), content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json()["fields"] == {"headers": ["Null characters are not allowed."]}
    server.refresh_from_db()
    assert server.headers == {}


def test_the_token_endpoint_refuses_deep_json_too(db):
    """Refused by the shared parser, before authentication: every endpoint benefits."""
    from rest_framework.test import APIClient

    response = _post(APIClient(), "/api/v1/auth/token", '{"username": ' + "[" * 5000 + "]" * 5000)

    assert response.status_code == 400
    assert response.json()["error"] == "parse_error"
