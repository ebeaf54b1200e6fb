from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from gateway.models import AgentKey, key_digest
from gateway.services import KeyRejected, agent_key_authenticate
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db


def test_it_creates_a_key_shown_once_and_stores_only_its_digest(user_api, user):
    agent = AgentFactory(owner=user)
    response = user_api.post(f"/api/v1/agents/{agent.pk}/keys", {"name": "laptop"})
    assert response.status_code == 201
    raw = response.json()["key"]
    assert raw.startswith("mcpa_") and len(raw) > 40
    key = AgentKey.objects.get()
    assert key.digest == key_digest(raw) and raw not in (key.digest, key.prefix)
    listed = user_api.get(f"/api/v1/agents/{agent.pk}/keys").json()
    assert listed["pagination"]["total"] == 1
    assert "key" not in listed["keys"][0]
    assert listed["keys"][0]["prefix"] == raw[:13]
    event = AuditEvent.objects.get(entity_type="agent_key")
    assert raw not in str(event.changes)


def test_it_rejects_a_key_without_a_name(user_api, user):
    agent = AgentFactory(owner=user)
    response = user_api.post(f"/api/v1/agents/{agent.pk}/keys", {})
    assert response.status_code == 400
    assert response.json()["error"] == "validation_error"


def test_it_rejects_an_expiry_in_the_past(user_api, user):
    agent = AgentFactory(owner=user)
    past = (timezone.now() - timedelta(days=1)).isoformat()
    response = user_api.post(f"/api/v1/agents/{agent.pk}/keys", {"name": "x", "expires_at": past})
    assert response.status_code == 400


def test_another_users_agent_is_404(user_api):
    agent = AgentFactory()
    assert user_api.post(f"/api/v1/agents/{agent.pk}/keys", {"name": "x"}).status_code == 404
    assert user_api.get(f"/api/v1/agents/{agent.pk}/keys").status_code == 404


def test_it_revokes_a_key_and_the_key_stops_working(user_api, user):
    agent = AgentFactory(owner=user)
    raw = user_api.post(f"/api/v1/agents/{agent.pk}/keys", {"name": "x"}).json()["key"]
    assert agent_key_authenticate(raw=raw).agent == agent
    key = AgentKey.objects.get()
    response = user_api.delete(f"/api/v1/agents/{agent.pk}/keys/{key.pk}")
    assert response.status_code == 200
    assert response.json()["state"] == "revoked"
    with pytest.raises(KeyRejected):
        agent_key_authenticate(raw=raw)
    assert AuditEvent.objects.filter(action="revoke", entity_type="agent_key").count() == 1


def test_an_expired_key_is_rejected(user_api, user):
    agent = AgentFactory(owner=user)
    raw = user_api.post(f"/api/v1/agents/{agent.pk}/keys", {"name": "x"}).json()["key"]
    AgentKey.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(KeyRejected):
        agent_key_authenticate(raw=raw)


def test_a_tampered_key_is_rejected(user_api, user):
    agent = AgentFactory(owner=user)
    raw = user_api.post(f"/api/v1/agents/{agent.pk}/keys", {"name": "x"}).json()["key"]
    with pytest.raises(KeyRejected):
        agent_key_authenticate(raw=raw[:-1] + ("A" if raw[-1] != "A" else "B"))


def test_it_sets_the_policy_and_validates_naming(user_api, user):
    agent = AgentFactory(owner=user)
    url = f"/api/v1/agents/{agent.pk}/gateway-policy"
    assert user_api.get(url).json()["naming"] == "mcp"
    response = user_api.patch(url, {"naming": "alias", "deny": ["*_delete*"]}, format="json")
    assert response.status_code == 200
    assert response.json()["deny"] == ["*_delete*"]
    assert user_api.patch(url, {"naming": "other"}, format="json").status_code == 400
    assert user_api.get(f"/api/v1/agents/{AgentFactory().pk}/gateway-policy").status_code == 404
