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


def test_direct_mode_stays_the_default(user_api, user):
    agent = AgentFactory(owner=user)
    McpServerFactory(name="Alpha")
    body = user_api.get(f"/api/v1/agents/{agent.pk}/mcp-config").json()
    assert list(body["mcpServers"]) == ["alpha"]
    explicit = user_api.get(f"/api/v1/agents/{agent.pk}/mcp-config?mode=direct").json()
    assert explicit["mcpServers"] == body["mcpServers"]


def test_an_unknown_mode_is_a_validation_error(user_api, user):
    agent = AgentFactory(owner=user)
    response = user_api.get(f"/api/v1/agents/{agent.pk}/mcp-config?mode=proxy")
    assert response.status_code == 400
    assert response.json()["error"] == "validation_error"


def test_gateway_mode_of_another_users_agent_is_404(user_api):
    response = user_api.get(f"/api/v1/agents/{AgentFactory().pk}/mcp-config?mode=gateway")
    assert response.status_code == 404
