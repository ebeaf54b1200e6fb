import pytest
from django.test import Client

from audit.models import AuditEvent
from gateway.models import AgentKey
from gateway.services import agent_key_create, agent_policy_set
from tests.factories import AdminFactory, AgentFactory

pytestmark = pytest.mark.django_db


def _admin_client() -> Client:
    client = Client()
    client.force_login(AdminFactory())
    return client


def test_the_admin_saves_a_policy_through_the_service(admin):
    agent = AgentFactory()
    policy = agent_policy_set(actor=None, agent=agent, changes={"deny": ["a*"]})
    response = _admin_client().post(
        f"/admin/gateway/agentpolicy/{policy.pk}/change/",
        {"agent": agent.pk, "naming": "alias", "allow": "[]", "deny": '["b*"]'},
    )
    assert response.status_code == 302
    policy.refresh_from_db()
    assert (policy.naming, policy.deny) == ("alias", ["b*"])
    assert AuditEvent.objects.filter(entity_type="agent_policy").count() == 2


def test_the_admin_revokes_keys_and_never_shows_the_digest(admin):
    key, raw = agent_key_create(actor=None, agent=AgentFactory(), name="k")
    client = _admin_client()
    page = client.get(f"/admin/gateway/agentkey/{key.pk}/change/").content.decode()
    assert key.digest not in page and raw not in page
    response = client.post(
        "/admin/gateway/agentkey/", {"action": "revoke", "_selected_action": [key.pk]}
    )
    assert response.status_code == 302
    assert AgentKey.objects.get().revoked_at is not None
