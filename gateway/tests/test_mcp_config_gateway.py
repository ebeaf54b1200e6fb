import pytest

from audit.models import AuditEvent
from tests.factories import AgentFactory, GrantFactory, McpServerFactory

pytestmark = pytest.mark.django_db


def test_gateway_mode_hands_one_entry_and_no_upstream_secret(user_api, user, settings):
    settings.MCPCONTROL_PUBLIC_URL = "https://mcp.example.org"
    agent = AgentFactory(owner=user)
    GrantFactory(server=McpServerFactory(auth_type="bearer"), secret="upstream-secret")
    response = user_api.get(f"/api/v1/agents/{agent.pk}/mcp-config?mode=gateway")
    assert response.status_code == 200
    body = response.json()
    assert body["mcpServers"] == {
        "mcpcontrol": {
            "type": "http",
            "url": f"https://mcp.example.org/mcp/agents/{agent.pk}",
            "headers": {
                "Authorization": f"Bearer <agent API key: POST /api/v1/agents/{agent.pk}/keys>"
            },
        }
    }
    assert "upstream-secret" not in response.content.decode()
    assert not AuditEvent.objects.filter(action="secret_read").exists()


def test_gateway_mode_puts_the_key_the_caller_passes(user_api, user):
    agent = AgentFactory(owner=user)
    response = user_api.get(
        f"/api/v1/agents/{agent.pk}/mcp-config?mode=gateway", HTTP_X_AGENT_KEY="mcpa_abc"
    )
    entry = response.json()["mcpServers"]["mcpcontrol"]
    assert entry["headers"] == {"Authorization": "Bearer mcpa_abc"}


def test_a_new_agent_hands_out_the_gateway_entry_by_default(user_api, user):
    GrantFactory(server=McpServerFactory(name="Alpha", auth_type="bearer"), secret="up-secret")
    created = user_api.post("/api/v1/agents", {"name": "fresh"}, format="json").json()
    assert created["config_mode"] == "gateway"
    response = user_api.get(f"/api/v1/agents/{created['id']}/mcp-config")
    assert list(response.json()["mcpServers"]) == ["mcpcontrol"]
    assert "up-secret" not in response.content.decode()


def test_an_agent_set_to_direct_hands_out_one_entry_per_upstream(user_api, user):
    McpServerFactory(name="Alpha")
    created = user_api.post(
        "/api/v1/agents", {"name": "old-style", "config_mode": "direct"}, format="json"
    ).json()
    assert created["config_mode"] == "direct"
    body = user_api.get(f"/api/v1/agents/{created['id']}/mcp-config").json()
    assert list(body["mcpServers"]) == ["alpha"]
    gateway = user_api.get(f"/api/v1/agents/{created['id']}/mcp-config?mode=gateway").json()
    assert list(gateway["mcpServers"]) == ["mcpcontrol"]


def test_an_agents_config_mode_can_be_changed_and_is_audited(user_api, user):
    agent = AgentFactory(owner=user, config_mode="gateway")
    response = user_api.patch(
        f"/api/v1/agents/{agent.pk}", {"config_mode": "direct"}, format="json"
    )
    assert response.json()["config_mode"] == "direct"
    event = AuditEvent.objects.filter(action="update").latest("id")
    assert event.changes["config_mode"] == {"old": "gateway", "new": "direct"}


def test_an_unknown_config_mode_is_a_validation_error(user_api, user):
    response = user_api.post("/api/v1/agents", {"name": "x", "config_mode": "proxy"}, format="json")
    assert response.status_code == 400
    assert "config_mode" in response.json()["fields"]


def test_an_unknown_mode_is_a_validation_error(user_api, user):
    agent = AgentFactory(owner=user)
    response = user_api.get(f"/api/v1/agents/{agent.pk}/mcp-config?mode=proxy")
    assert response.status_code == 400
    assert response.json()["error"] == "validation_error"


def test_gateway_mode_of_another_users_agent_is_404(user_api):
    response = user_api.get(f"/api/v1/agents/{AgentFactory().pk}/mcp-config?mode=gateway")
    assert response.status_code == 404
