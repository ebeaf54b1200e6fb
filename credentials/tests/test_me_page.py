"""/me/: a non-staff user's own page, with Django's test client (the browser flows are in
tests/browser/)."""

import json

import pytest
from django.core.cache import cache
from django.test import Client

from audit.models import AuditEvent
from credentials.models import Grant, OAuthState, VariableValue
from credentials.tests.conftest import follow_authorization
from gateway.models import AgentKey, key_digest
from gateway.services import agent_key_create
from servers.models import McpServer
from tests.factories import AgentFactory, GrantFactory, McpServerFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def member():
    return UserFactory(username="member")  # neither staff nor holding any permission


@pytest.fixture
def browser(member) -> Client:
    client = Client()
    client.force_login(member)
    return client


@pytest.fixture
def per_agent_oauth(peers) -> McpServer:
    return McpServer.objects.create(
        name="Protected", path="/protected", url=peers.mcp_url,
        auth_type=McpServer.AuthType.OAUTH, credential_mode=McpServer.CredentialMode.PER_AGENT,
    )  # fmt: skip


@pytest.fixture
def clean_login_counters():
    """The failure counters live in the cache for a minute: leave none to other tests."""
    cache.clear()
    yield
    cache.clear()


def page(client: Client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def test_it_sends_an_anonymous_visitor_to_the_login_page():
    response = Client().get("/me/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/me/"


def test_a_non_staff_user_logs_in_and_sees_only_their_agents(member):
    AgentFactory(owner=member, name="mine")
    AgentFactory(name="someone-elses")
    client = Client()
    response = client.post(
        "/accounts/login/", {"username": "member", "password": "pw-for-tests-only"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/me/"
    body = page(client, "/me/")
    assert "mine" in body
    assert "someone-elses" not in body


def test_the_login_refuses_a_wrong_password(member, clean_login_counters):
    response = Client(REMOTE_ADDR="198.51.100.8").post(
        "/accounts/login/", {"username": "member", "password": "nope"}
    )
    assert response.status_code == 200
    assert "_auth_user_id" not in Client().session


def test_the_login_is_throttled_like_the_admins(member, settings, clean_login_counters):
    settings.MCPCONTROL_LOGIN_FAILURES_PER_MINUTE = 2
    client = Client(REMOTE_ADDR="198.51.100.7")
    for _ in range(2):
        client.post("/accounts/login/", {"username": "member", "password": "nope"})
    response = client.post(
        "/accounts/login/", {"username": "member", "password": "pw-for-tests-only"}
    )
    assert response.status_code == 429


def test_another_users_agent_is_a_404(browser, member):
    other = AgentFactory()
    server = McpServerFactory()
    assert browser.get(f"/me/agents/{other.pk}/").status_code == 404
    assert browser.post(f"/me/agents/{other.pk}/servers/{server.pk}/connect/").status_code == 404
    download = browser.get(f"/me/agents/{other.pk}/config/download/?client=vscode")
    assert download.status_code == 404


def test_a_superuser_too_sees_only_their_own_agents_here():
    admin = UserFactory(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin)
    assert client.get(f"/me/agents/{AgentFactory().pk}/").status_code == 404


def test_every_post_needs_the_csrf_token(member):
    agent = AgentFactory(owner=member)
    server = McpServerFactory(custom_user_vars={"REGION": {"title": "Region"}})
    client = Client(enforce_csrf_checks=True)
    client.force_login(member)
    url = f"/me/agents/{agent.pk}/servers/{server.pk}/variables/"
    assert client.post(url, {"var_REGION": "eu"}).status_code == 403
    assert client.post("/me/", {"name": "sneaky"}).status_code == 403
    assert not VariableValue.objects.exists()


def test_it_adds_an_agent(browser, member):
    response = browser.post("/me/", {"name": "laptop"})
    agent = member.mcp_agents.get()
    assert response["Location"] == f"/me/agents/{agent.pk}/"
    assert AuditEvent.objects.filter(action=AuditEvent.Action.CREATE, actor=member).exists()


def test_a_new_agents_page_offers_its_gateway_config_first(browser, member):
    browser.post("/me/", {"name": "laptop"})
    agent = member.mcp_agents.get()
    page = browser.get(f"/me/agents/{agent.pk}/?client=cursor").content.decode()
    assert '<option value="gateway" selected>' in page
    assert f"/mcp/agents/{agent.pk}" in page


def test_it_refuses_a_duplicate_agent_name_in_words(browser, member):
    AgentFactory(owner=member, name="laptop")
    response = browser.post("/me/", {"name": "laptop"}, follow=True)
    assert "Cannot add the agent" in response.content.decode()
    assert member.mcp_agents.count() == 1


def test_the_agent_page_shows_each_servers_credential_state(browser, member):
    agent = AgentFactory(owner=member)
    GrantFactory(server=McpServerFactory(name="Wiki", auth_type="bearer"), secret="w-tok")
    McpServerFactory(name="Needs Key", auth_type="bearer", credential_mode="per_agent")
    McpServerFactory(name="Open")
    body = page(browser, f"/me/agents/{agent.pk}/")
    assert "Wiki" in body and "connected" in body
    assert "not connected" in body
    assert "no credential needed" in body
    assert "w-tok" not in body  # the config (and its secrets) only on request


def test_the_agent_page_shows_the_chosen_clients_config_and_audits_it(browser, member):
    agent = AgentFactory(owner=member)
    GrantFactory(server=McpServerFactory(name="Wiki", auth_type="bearer"), secret="w-tok")
    body = page(browser, f"/me/agents/{agent.pk}/?client=claude-code")
    assert "Bearer w-tok" in body
    assert 'id="copy-config"' in body and ".mcp.json" in body
    assert (
        AuditEvent.objects.filter(action=AuditEvent.Action.SECRET_READ, actor=member).count() == 1
    )


def test_it_downloads_the_config_as_the_clients_file(browser, member):
    agent = AgentFactory(owner=member)
    McpServerFactory(name="Open")
    response = browser.get(f"/me/agents/{agent.pk}/config/download/?client=claude-code")
    assert response["Content-Disposition"] == 'attachment; filename=".mcp.json"'
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content)["mcpServers"]["open"]["type"] == "http"
    codex = browser.get(f"/me/agents/{agent.pk}/config/download/?client=codex")
    assert codex["Content-Disposition"] == 'attachment; filename="config.toml"'


def test_the_download_refuses_an_unknown_client(browser, member):
    agent = AgentFactory(owner=member)
    assert browser.get(f"/me/agents/{agent.pk}/config/download/?client=ed").status_code == 400


def test_it_sets_and_clears_the_agents_variables(browser, member):
    agent = AgentFactory(owner=member)
    server = McpServerFactory(custom_user_vars={"REGION": {"title": "Region"}})
    url = f"/me/agents/{agent.pk}/servers/{server.pk}/variables/"
    browser.post(url, {"var_REGION": "eu-west"})
    value = VariableValue.objects.get(agent=agent, server=server, name="REGION")
    assert value.value.reveal() == "eu-west"
    assert "eu-west" not in page(browser, f"/me/agents/{agent.pk}/")  # never shown back

    browser.post(url, {"clear_REGION": "on"})
    assert not VariableValue.objects.filter(agent=agent).exists()


def test_it_refuses_an_undeclared_value_in_a_variable(browser, member):
    agent = AgentFactory(owner=member)
    server = McpServerFactory(custom_user_vars={"REGION": {"title": "Region"}})
    url = f"/me/agents/{agent.pk}/servers/{server.pk}/variables/"
    response = browser.post(url, {"var_REGION": "a\r\nb"}, follow=True)
    assert "Cannot save" in response.content.decode()
    assert not VariableValue.objects.exists()


def test_a_member_cannot_connect_a_shared_grant(browser, member, peers):
    agent = AgentFactory(owner=member)
    server = McpServer.objects.create(
        name="Shared", path="/shared", url=peers.mcp_url, auth_type=McpServer.AuthType.OAUTH
    )
    assert 'id="connect-' not in page(browser, f"/me/agents/{agent.pk}/")
    browser.post(f"/me/agents/{agent.pk}/servers/{server.pk}/connect/")
    assert not OAuthState.objects.exists()


def test_a_member_connects_their_agent_end_to_end(browser, member, per_agent_oauth):
    """Connect → the authorization server → /oauth/callback in the member's own session:
    the grant is the agent's, consented by the member, and the config carries it."""
    agent = AgentFactory(owner=member)
    page_url = f"/me/agents/{agent.pk}/"
    assert f'id="connect-{per_agent_oauth.pk}"' in page(browser, page_url)

    start = browser.post(f"/me/agents/{agent.pk}/servers/{per_agent_oauth.pk}/connect/")
    assert start.status_code == 302
    landed = browser.get(follow_authorization(start["Location"]))

    assert landed.status_code == 302
    assert landed["Location"] == page_url
    grant = Grant.objects.get(server=per_agent_oauth, agent=agent)
    assert grant.granted_by == member
    body = page(browser, f"{page_url}?client=claude-code")
    assert f"Bearer {grant.secret.reveal()}" in body
    assert "Connected Protected." in body


def test_a_member_disconnects_their_agent(browser, member, per_agent_oauth):
    agent = AgentFactory(owner=member)
    start = browser.post(f"/me/agents/{agent.pk}/servers/{per_agent_oauth.pk}/connect/")
    browser.get(follow_authorization(start["Location"]))

    response = browser.post(
        f"/me/agents/{agent.pk}/servers/{per_agent_oauth.pk}/disconnect/", follow=True
    )
    assert "Disconnected Protected." in response.content.decode()
    assert not Grant.objects.filter(agent=agent).exists()


def test_connect_and_disconnect_answer_only_post(browser, member):
    agent = AgentFactory(owner=member)
    server = McpServerFactory()
    assert browser.get(f"/me/agents/{agent.pk}/servers/{server.pk}/connect/").status_code == 405


def test_it_stores_and_forgets_the_agents_own_key(browser, member):
    agent = AgentFactory(owner=member)
    server = McpServerFactory(name="Keyed", auth_type="api_key", credential_mode="per_agent")
    url = f"/me/agents/{agent.pk}/servers/{server.pk}/key/"

    browser.post(url, {"key": "agent-key-1"})
    grant = Grant.objects.get(server=server, agent=agent)
    assert grant.secret.reveal() == "agent-key-1"
    assert grant.granted_by == member
    body = page(browser, f"/me/agents/{agent.pk}/")
    assert "agent-key-1" not in body  # write-only
    assert "Forget key" in body

    browser.post(url, {"forget": "1"})
    assert not Grant.objects.filter(agent=agent).exists()


def test_it_refuses_a_key_for_a_shared_server(browser, member):
    agent = AgentFactory(owner=member)
    server = McpServerFactory(name="Shared", auth_type="bearer")
    url = f"/me/agents/{agent.pk}/servers/{server.pk}/key/"
    response = browser.post(url, {"key": "mine"}, follow=True)
    assert "takes no key of this agent" in response.content.decode()
    assert not Grant.objects.exists()


def test_it_refuses_an_empty_or_broken_key_in_words(browser, member):
    agent = AgentFactory(owner=member)
    server = McpServerFactory(name="Keyed", auth_type="bearer", credential_mode="per_agent")
    url = f"/me/agents/{agent.pk}/servers/{server.pk}/key/"
    response = browser.post(url, {"key": "a\nb"}, follow=True)
    assert "Cannot save the key" in response.content.decode()
    assert not Grant.objects.exists()


def test_an_empty_key_keeps_the_stored_one(browser, member):
    agent = AgentFactory(owner=member)
    server = McpServerFactory(name="Keyed", auth_type="bearer", credential_mode="per_agent")
    url = f"/me/agents/{agent.pk}/servers/{server.pk}/key/"
    browser.post(url, {"key": "kept"})
    response = browser.post(url, {"key": "  "}, follow=True)
    assert "Enter a key" in response.content.decode()
    assert Grant.objects.get(agent=agent).secret.reveal() == "kept"


# Gateway keys on the agent's page (docs/gateway.md).


def test_it_creates_a_gateway_key_shown_once_and_put_in_the_config(browser, member):
    agent = AgentFactory(owner=member)
    GrantFactory(server=McpServerFactory(name="Wiki", auth_type="bearer"), secret="w-tok")
    response = browser.post(
        f"/me/agents/{agent.pk}/keys/", {"name": "laptop", "expires_days": "30", "client": "vscode"}
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    key = AgentKey.objects.get(agent=agent)
    body = response.content.decode()
    raw = body.split('id="new-key-value">')[1].split("<")[0]
    assert raw.startswith("mcpa_") and key.digest == key_digest(raw)
    assert key.name == "laptop" and key.expires_at is not None
    # The vscode file, in gateway mode, with the new key and no upstream secret.
    assert f"Bearer {raw}" in body and f"/mcp/agents/{agent.pk}" in body
    assert ".vscode/mcp.json" in body and "w-tok" not in body
    event = AuditEvent.objects.get(entity_type="agent_key", actor=member)
    assert raw not in str(event.changes)

    again = page(browser, f"/me/agents/{agent.pk}/?client=vscode&mode=gateway")
    assert raw not in again and "new-key-value" not in again  # never shown again
    assert f"mcpa_{key.prefix}" in again and "laptop" in again
    assert 'id="gateway-key-note"' in again


def test_it_refuses_a_gateway_key_without_a_name_in_words(browser, member):
    agent = AgentFactory(owner=member)
    response = browser.post(f"/me/agents/{agent.pk}/keys/", {"name": " "}, follow=True)
    assert "Cannot create the key" in response.content.decode()
    assert not AgentKey.objects.exists()
    response = browser.post(f"/me/agents/{agent.pk}/keys/", {"name": "x", "expires_days": "7"})
    assert response.status_code == 302 and not AgentKey.objects.exists()


def test_it_revokes_a_gateway_key_on_the_record(browser, member):
    agent = AgentFactory(owner=member)
    key, _ = agent_key_create(actor=member, agent=agent, name="old")
    response = browser.post(f"/me/agents/{agent.pk}/keys/{key.pk}/revoke/", follow=True)
    assert "Revoked the key old." in response.content.decode()
    key.refresh_from_db()
    assert key.state == "revoked"
    assert AuditEvent.objects.filter(
        entity_type="agent_key", action=AuditEvent.Action.REVOKE, actor=member
    ).exists()
    assert f'id="revoke-key-{key.pk}"' not in page(browser, f"/me/agents/{agent.pk}/")


def test_another_users_agent_keys_are_404(browser, member):
    other = AgentFactory()
    key, _ = agent_key_create(actor=None, agent=other, name="theirs")
    mine = AgentFactory(owner=member)
    assert browser.post(f"/me/agents/{other.pk}/keys/", {"name": "x"}).status_code == 404
    assert browser.post(f"/me/agents/{other.pk}/keys/{key.pk}/revoke/").status_code == 404
    # Nor through one's own agent's URL.
    assert browser.post(f"/me/agents/{mine.pk}/keys/{key.pk}/revoke/").status_code == 404
    key.refresh_from_db()
    assert key.state == "active" and AgentKey.objects.count() == 1


def test_key_writes_need_post_and_the_csrf_token(member):
    agent = AgentFactory(owner=member)
    key, _ = agent_key_create(actor=None, agent=agent, name="k")
    client = Client(enforce_csrf_checks=True)
    client.force_login(member)
    assert client.post(f"/me/agents/{agent.pk}/keys/", {"name": "x"}).status_code == 403
    assert client.post(f"/me/agents/{agent.pk}/keys/{key.pk}/revoke/").status_code == 403
    assert client.get(f"/me/agents/{agent.pk}/keys/{key.pk}/revoke/").status_code == 405
    key.refresh_from_db()
    assert key.state == "active" and AgentKey.objects.count() == 1


def test_the_gateway_mode_config_holds_no_upstream_secret_and_is_not_audited(browser, member):
    agent = AgentFactory(owner=member)
    GrantFactory(server=McpServerFactory(name="Wiki", auth_type="bearer"), secret="w-tok")
    body = page(browser, f"/me/agents/{agent.pk}/?client=codex&mode=gateway")
    assert "[mcp_servers.mcpcontrol]" in body and "w-tok" not in body
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.SECRET_READ).exists()
    download = browser.get(f"/me/agents/{agent.pk}/config/download/?client=codex&mode=gateway")
    assert b"mcpcontrol" in download.content and b"w-tok" not in download.content
