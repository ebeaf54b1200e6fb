"""A key made and revoked on /me/ (Django's test client), presented at the gateway (served
for real by the gateway_url fixture)."""

import pytest
from django.test import Client

from gateway.tests.test_gateway_mcp import _status
from tests.factories import AgentFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_key_made_on_me_opens_the_gateway_until_it_is_revoked_there(gateway_url):
    member = UserFactory(username="member")
    agent = AgentFactory(owner=member)
    browser = Client()
    browser.force_login(member)
    created = browser.post(f"/me/agents/{agent.pk}/keys/", {"name": "laptop"})
    raw = created.content.decode().split('id="new-key-value">')[1].split("<")[0]
    url = f"{gateway_url}/mcp/agents/{agent.pk}"
    assert _status(url, raw) == 200

    key = agent.gateway_keys.get()
    revoked = browser.post(f"/me/agents/{agent.pk}/keys/{key.pk}/revoke/")
    assert revoked.status_code == 302
    assert _status(url, raw) == 401
