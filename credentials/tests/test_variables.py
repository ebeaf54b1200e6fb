"""Seed 004's custom_user_vars: values per user and per agent, encrypted, substituted into
${NAME} only where a server is reached (client config, health check)."""

import pytest
from django.db import connection

from audit.models import AuditEvent
from credentials.models import Grant, VariableValue
from servers import services
from servers.models import McpServer
from tests.api_fixtures import client_for
from tests.factories import AgentFactory, McpServerFactory, UserFactory

pytestmark = pytest.mark.django_db

SECRET = "ghp_variableValueThatMustStaySecret"
GITHUB_VARS = {"GITHUB_TOKEN": {"title": "GitHub token", "required": True}}


def _remote(**fields) -> McpServer:
    return McpServerFactory(
        url="https://api.example.com/${REGION}/mcp",
        headers={"X-Token": "token ${GITHUB_TOKEN}", "X-Static": "plain"},
        custom_user_vars={**GITHUB_VARS, "REGION": {"title": "Region"}},
        **fields,
    )


def _config(user, agent) -> dict:
    return client_for(user).get(f"/api/v1/agents/{agent.pk}/mcp-config").json()


def test_a_users_value_is_substituted_into_their_agents_config():
    user = UserFactory()
    server = _remote()
    agent = AgentFactory(owner=user)
    response = client_for(user).put(
        f"/api/v1/servers/{server.pk}/variables", {"GITHUB_TOKEN": SECRET, "REGION": "eu"},
        format="json",
    )  # fmt: skip

    assert response.status_code == 200, response.json()
    assert response.json()["set"] == ["GITHUB_TOKEN", "REGION"]
    assert SECRET not in response.content.decode()
    entry = _config(user, agent)["mcpServers"][server.server_key]
    assert entry["url"] == "https://api.example.com/eu/mcp"
    assert entry["headers"] == {"X-Token": f"token {SECRET}", "X-Static": "plain"}


def test_an_agents_own_value_wins_over_its_owners():
    user = UserFactory()
    server = _remote()
    agent = AgentFactory(owner=user)
    api = client_for(user)
    api.put(f"/api/v1/servers/{server.pk}/variables", {"GITHUB_TOKEN": "user-value"}, format="json")
    response = api.put(
        f"/api/v1/agents/{agent.pk}/variables/{server.pk}", {"GITHUB_TOKEN": "agent-value"},
        format="json",
    )  # fmt: skip

    assert response.status_code == 200
    headers = _config(user, agent)["mcpServers"][server.server_key]["headers"]
    assert headers["X-Token"] == "token agent-value"


def test_a_required_variable_without_a_value_makes_the_server_missing():
    user = UserFactory()
    server = _remote()

    body = _config(user, AgentFactory(owner=user))

    assert server.server_key not in body["mcpServers"]
    [missing] = body["missing_credentials"]
    assert "GITHUB_TOKEN" in missing["reason"]


@pytest.mark.sql_only("reads the stored column with raw SQL (connection.cursor)")
def test_values_are_ciphertext_at_rest_and_in_no_response_or_audit_row():
    user = UserFactory()
    server = _remote()
    client_for(user).put(
        f"/api/v1/servers/{server.pk}/variables", {"GITHUB_TOKEN": SECRET}, format="json"
    )

    with connection.cursor() as cursor:
        cursor.execute("SELECT value FROM credentials_variablevalue")
        (stored,) = cursor.fetchone()
    assert SECRET not in stored
    detail = client_for(user).get(f"/api/v1/servers/{server.pk}").content.decode()
    assert SECRET not in detail
    assert SECRET not in str(list(AuditEvent.objects.values_list("changes", flat=True)))
    assert AuditEvent.objects.filter(entity_type="variable", action="update").exists()


def test_a_variable_the_server_does_not_declare_is_refused():
    user = UserFactory()
    server = _remote()

    response = client_for(user).put(
        f"/api/v1/servers/{server.pk}/variables", {"OTHER": "x"}, format="json"
    )

    assert response.status_code == 400
    assert "OTHER" in response.json()["message"]
    assert not VariableValue.objects.exists()


def test_another_users_private_server_takes_no_values():
    server = _remote(scope="private_user", owner=UserFactory())

    response = client_for(UserFactory()).put(
        f"/api/v1/servers/{server.pk}/variables", {"GITHUB_TOKEN": "x"}, format="json"
    )

    assert response.status_code == 404


def test_null_removes_a_value():
    user = UserFactory()
    server = _remote()
    api = client_for(user)
    api.put(f"/api/v1/servers/{server.pk}/variables", {"GITHUB_TOKEN": "x"}, format="json")

    response = api.put(f"/api/v1/servers/{server.pk}/variables", {"GITHUB_TOKEN": None},
                       format="json")  # fmt: skip

    assert response.json()["set"] == []
    assert not VariableValue.objects.exists()


def test_the_health_check_uses_the_probe_agents_values(make_server, auth_http_url):
    owner = UserFactory()
    agent = AgentFactory(owner=owner)
    server = make_server(
        url=auth_http_url, headers={"Authorization": "Bearer ${API_TOKEN}"},
        custom_user_vars={"API_TOKEN": {"title": "API token", "required": True}},
        probe_agent=agent, credential_mode="shared",
    )  # fmt: skip

    before = services.server_check(server_id=server.pk)
    VariableValue.objects.create(server=server, agent=agent, name="API_TOKEN", value="s3cret")
    after = services.server_check(server_id=server.pk)

    assert before.outcome == "auth_required" and "API_TOKEN" in before.message
    assert after.outcome == "healthy"


# --- OAuth on a stdio server (seed 004's GitHub example) ------------------------------


def _github_stdio() -> McpServer:
    return McpServerFactory(
        transport_type="stdio", url="", command="npx",
        args=["-y", "@modelcontextprotocol/server-github"],
        env={"GITHUB_PERSONAL_ACCESS_TOKEN": "${GITHUB_TOKEN}"}, auth_type="oauth",
        oauth={"authorization_url": "https://github.com/login/oauth/authorize",
               "token_url": "https://github.com/login/oauth/access_token",
               "client_id": "github_client_id"},
        custom_user_vars=GITHUB_VARS,
    )  # fmt: skip


def test_an_oauth_stdio_server_without_a_grant_is_never_handed_out_half_configured():
    user = UserFactory()
    server = _github_stdio()

    body = _config(user, AgentFactory(owner=user))

    assert server.server_key not in body["mcpServers"]
    assert "connect it first" in body["missing_credentials"][0]["reason"]


def test_an_oauth_stdio_server_gets_the_access_token_in_the_variable_its_document_names():
    user = UserFactory()
    server = _github_stdio()
    Grant.objects.create(server=server, kind="oauth", secret="gho_accessToken")

    entry = _config(user, AgentFactory(owner=user))["mcpServers"][server.server_key]

    assert entry["env"] == {"GITHUB_PERSONAL_ACCESS_TOKEN": "gho_accessToken"}
    assert entry["command"] == "npx"
