import pytest

from audit.models import AuditEvent
from credentials.models import Grant
from servers.models import AgentConnection, McpServer
from tests.factories import (
    AgentConnectionFactory,
    AgentFactory,
    GrantFactory,
    McpServerFactory,
    UserFactory,
)


def agent_credential(agent, server, secret):
    """An agent's own credential for a server, as the connections endpoint stores it."""
    AgentConnectionFactory(agent=agent, server=server)
    return GrantFactory(server=server, agent=agent, secret=secret)


pytestmark = pytest.mark.django_db


def test_it_creates_an_agent_for_the_caller(user_api, user):
    response = user_api.post("/api/v1/agents", {"name": "claude"}, format="json")
    assert response.status_code == 201
    assert response.json()["user_id"] == str(user.pk)


def test_it_rejects_an_agent_without_a_name(user_api):
    response = user_api.post("/api/v1/agents", {}, format="json")
    assert response.status_code == 400
    assert "name" in response.json()["fields"]


def test_it_rejects_a_duplicate_agent_name(user_api, user):
    AgentFactory(owner=user, name="claude")
    response = user_api.post("/api/v1/agents", {"name": "claude"}, format="json")
    assert response.status_code == 400


def test_it_forbids_users_creating_agents_for_others(user_api):
    response = user_api.post(
        "/api/v1/agents", {"name": "x", "user_id": str(UserFactory().pk)}, format="json"
    )
    assert response.status_code == 403


def test_it_lists_only_the_callers_agents(user_api, user):
    AgentFactory(owner=user)
    AgentFactory()
    assert user_api.get("/api/v1/agents").json()["pagination"]["total"] == 1


def test_it_updates_an_agent(user_api, user):
    agent = AgentFactory(owner=user)
    response = user_api.patch(f"/api/v1/agents/{agent.pk}", {"description": "d"}, format="json")
    assert response.status_code == 200
    assert response.json()["description"] == "d"


def test_it_deletes_an_agent(user_api, user):
    agent = AgentFactory(owner=user)
    assert user_api.delete(f"/api/v1/agents/{agent.pk}").status_code == 204


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_it_hides_another_users_agent(user_api, method):
    agent = AgentFactory()
    response = getattr(user_api, method)(f"/api/v1/agents/{agent.pk}", {}, format="json")
    assert response.status_code == 404


# --- per-agent credentials -------------------------------------------------------------


def test_it_stores_an_agent_credential_write_only(user_api, user):
    agent = AgentFactory(owner=user)
    server = McpServerFactory(auth_type="bearer", credential_mode="per_agent")
    response = user_api.put(
        f"/api/v1/agents/{agent.pk}/connections/{server.pk}",
        {"access_token": "agent-secret"},
        format="json",
    )
    assert response.status_code == 200
    assert "agent-secret" not in response.content.decode()
    assert AgentConnection.objects.filter(agent=agent, server=server).exists()
    assert Grant.objects.get(agent=agent, server=server).secret.reveal() == "agent-secret"


def test_it_audits_a_stored_credential_redacted(user_api, user):
    agent = AgentFactory(owner=user)
    server = McpServerFactory(auth_type="api_key", header_name="X-Key", credential_mode="per_agent")
    user_api.put(
        f"/api/v1/agents/{agent.pk}/connections/{server.pk}", {"api_key": "k-123"}, format="json"
    )
    event = AuditEvent.objects.get(entity_type="grant")
    assert event.changes["secret"]["new"] == "[redacted]"
    assert str(event.changes["agent"]["new"]) == str(agent.pk)
    assert "k-123" not in str(event.changes)


def test_it_rejects_a_credential_without_a_token(user_api, user):
    agent = AgentFactory(owner=user)
    server = McpServerFactory()
    response = user_api.put(f"/api/v1/agents/{agent.pk}/connections/{server.pk}", {}, format="json")
    assert response.status_code == 400


def test_it_hides_a_server_the_agent_owner_cannot_see(user_api, user):
    agent = AgentFactory(owner=user)
    server = McpServerFactory(scope="private_user", owner=UserFactory())
    response = user_api.put(
        f"/api/v1/agents/{agent.pk}/connections/{server.pk}", {"api_key": "k"}, format="json"
    )
    assert response.status_code == 404


def test_it_removes_an_agent_credential(user_api, user):
    agent = AgentFactory(owner=user)
    server = McpServerFactory(auth_type="bearer", credential_mode="per_agent")
    agent_credential(agent, server, "tok")
    url = f"/api/v1/agents/{agent.pk}/connections/{server.pk}"
    assert user_api.delete(url).status_code == 204
    assert not AgentConnection.objects.exists()
    assert not Grant.objects.exists()


# --- mcp-config -------------------------------------------------------------------------


def test_it_exports_a_client_config_with_resolved_credentials(user_api, user):
    agent = AgentFactory(owner=user)
    GrantFactory(server=McpServerFactory(name="Bearer One", auth_type="bearer"), secret="b-tok")
    keyed = McpServerFactory(name="Keyed", auth_type="api_key", header_name="X-Key", prefix="K ",
                             transport_type="sse")  # fmt: skip
    GrantFactory(server=keyed, secret="k-tok")
    per_agent = McpServerFactory(name="Per Agent", auth_type="bearer", credential_mode="per_agent")
    agent_credential(agent, per_agent, "agent-tok")
    McpServerFactory(name="Open", transport_type="websocket", url="wss://ws.example.com/mcp")
    response = user_api.get(f"/api/v1/agents/{agent.pk}/mcp-config")
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    servers = response.json()["mcpServers"]
    assert servers["bearer_one"]["headers"] == {"Authorization": "Bearer b-tok"}
    assert servers["bearer_one"]["type"] == "http"
    assert servers["keyed"] == {
        "type": "sse",
        "url": McpServer.objects.get(name="Keyed").url,
        "headers": {"X-Key": "K k-tok"},
    }
    assert servers["per_agent"]["headers"] == {"Authorization": "Bearer agent-tok"}
    assert servers["open"]["type"] == "ws"
    assert response.json()["missing_credentials"] == []


def test_the_client_config_carries_real_env_and_header_values(user_api, user):
    agent = AgentFactory(owner=user)
    McpServerFactory(name="Local", transport_type="stdio", url="", command="npx",
                     env={"GITHUB_TOKEN": "ghp_envValue"})  # fmt: skip
    McpServerFactory(name="Remote", headers={"X-Api-Key": "header-value"})

    servers = user_api.get(f"/api/v1/agents/{agent.pk}/mcp-config").json()["mcpServers"]

    assert servers["local"]["env"] == {"GITHUB_TOKEN": "ghp_envValue"}
    assert servers["remote"]["headers"] == {"X-Api-Key": "header-value"}


def test_it_lists_servers_without_credentials_as_missing(user_api, user):
    agent = AgentFactory(owner=user)
    McpServerFactory(name="Needs Key", auth_type="bearer", credential_mode="per_agent")
    body = user_api.get(f"/api/v1/agents/{agent.pk}/mcp-config").json()
    assert body["mcpServers"] == {}
    assert [m["server_key"] for m in body["missing_credentials"]] == ["needs_key"]


def test_it_exports_stdio_servers_with_command_and_args(user_api, user):
    agent = AgentFactory(owner=user)
    McpServerFactory(
        name="Local", transport_type="stdio", url="", command="npx", args=["-y", "srv"]
    )
    entry = user_api.get(f"/api/v1/agents/{agent.pk}/mcp-config").json()["mcpServers"]["local"]
    assert (entry["type"], entry["command"], entry["args"]) == ("stdio", "npx", ["-y", "srv"])


def test_it_skips_disabled_and_invisible_servers_in_the_config(user_api, user):
    agent = AgentFactory(owner=user)
    McpServerFactory(name="Off", is_enabled=False)
    McpServerFactory(name="Hidden", scope="private_user", owner=UserFactory())
    assert user_api.get(f"/api/v1/agents/{agent.pk}/mcp-config").json()["mcpServers"] == {}


def test_it_audits_each_config_read(user_api, user):
    agent = AgentFactory(owner=user)
    GrantFactory(server=McpServerFactory(name="S", auth_type="bearer"), secret="tok")
    user_api.get(f"/api/v1/agents/{agent.pk}/mcp-config")
    user_api.get(f"/api/v1/agents/{agent.pk}/mcp-config")
    events = AuditEvent.objects.filter(
        action=AuditEvent.Action.SECRET_READ, entity_id=str(agent.pk)
    )
    assert events.count() == 2
    assert events.first().actor == user
    assert "tok" not in str(events.first().changes["mcp_config"])


def test_it_hides_another_users_agent_config(user_api):
    assert user_api.get(f"/api/v1/agents/{AgentFactory().pk}/mcp-config").status_code == 404


# --- tool names -------------------------------------------------------------------------


def test_it_names_tools_in_both_conventions(user_api, user):
    agent = AgentFactory(owner=user)
    McpServerFactory(name="My Server!", alias="mine", tools=[{"name": "search"}])
    tools = user_api.get(f"/api/v1/agents/{agent.pk}/tools").json()["tools"]
    assert tools[0]["mcp_name"] == "mcp__my_server___search"
    assert tools[0]["alias_name"] == "mine_search"


def test_tool_names_use_the_same_keys_as_the_config(user_api, user):
    agent = AgentFactory(owner=user)
    McpServerFactory(name="My Server", tools=[{"name": "go"}])
    second = McpServerFactory(name="my-server", tools=[{"name": "go"}])

    body = user_api.get(f"/api/v1/agents/{agent.pk}/tools").json()
    config = user_api.get(f"/api/v1/agents/{agent.pk}/mcp-config").json()["mcpServers"]

    names = {tool["mcp_name"] for tool in body["tools"]}
    assert names == {"mcp__my_server__go", f"mcp__my_server_{second.pk}__go"}
    assert {tool["server_key"] for tool in body["tools"]} == set(config)
    assert body["collisions"] == []  # both kept, distinctly named


def test_servers_whose_keys_collide_both_appear_in_the_config(user_api, user):
    agent = AgentFactory(owner=user)
    McpServerFactory(name="Team Wiki")
    second = McpServerFactory(name="team_wiki", alias="wiki2")

    servers = user_api.get(f"/api/v1/agents/{agent.pk}/mcp-config").json()["mcpServers"]

    assert set(servers) == {"team_wiki", f"team_wiki_{second.pk}"}


@pytest.mark.parametrize("count", [1, 6])
def test_the_config_runs_the_same_queries_for_one_or_many_per_agent_servers(
    user_api, user, count, django_assert_max_num_queries
):
    agent = AgentFactory(owner=user)
    for index in range(count):
        server = McpServerFactory(
            name=f"Per {index}", auth_type="bearer", credential_mode="per_agent"
        )
        agent_credential(agent, server, f"tok-{index}")

    with django_assert_max_num_queries(9):  # the same bound for 1 and 6: no query per server
        body = user_api.get(f"/api/v1/agents/{agent.pk}/mcp-config").json()

    assert len(body["mcpServers"]) == count
