"""The server page: state, error in words and buttons on top; tools and check history;
saving a remote server runs a real check and reports it, without the save depending on it."""

import pytest
from django.urls import reverse
from django.utils import timezone

from servers.models import CheckResult, McpServer
from tests.factories import McpServerFactory

pytestmark = pytest.mark.django_db


def _add_form(**fields):
    return {
        "name": "Peer", "transport_type": "streamable-http", "auth_type": "none",
        "credential_mode": "shared", "scope": "shared_app", "is_enabled": "on",
        "stderr": "ignore", "timeout_ms": 5000, "init_timeout_ms": 5000, "tags": "[]",
        "args": "[]", "custom_user_vars": "{}", "mcp_options": "{}", "catalog": "{}",
        "oauth_headers": "{}", "oauth_grant_type": "authorization_code",
        "oauth_token_exchange_method": "POST", **fields,
    }  # fmt: skip


def _messages(response):
    return " | ".join(str(m) for m in response.context["messages"])


def test_saving_a_new_server_checks_it_and_shows_the_outcome(
    admin_client, sdk_http_url, celery_eager, private_cache
):
    response = admin_client.post(
        reverse("admin:servers_mcpserver_add"), _add_form(url=sdk_http_url), follow=True
    )

    server = McpServer.objects.get(name="Peer")
    assert "Peer: healthy" in _messages(response)
    assert server.state == "healthy" and server.num_tools > 0
    assert CheckResult.objects.filter(server=server, outcome="healthy").count() == 1


def test_a_server_that_is_down_is_saved_and_its_failure_shown_in_words(
    admin_client, refused_url, celery_eager, private_cache
):
    response = admin_client.post(
        reverse("admin:servers_mcpserver_add"), _add_form(url=refused_url), follow=True
    )

    assert McpServer.objects.filter(name="Peer").exists()
    assert "cannot connect to 127.0.0.1:" in _messages(response)
    assert "connection refused" in _messages(response)


def test_the_page_shows_state_error_and_buttons_first(admin_client):
    server = McpServerFactory(
        url="http://127.0.0.1:8765/mcp", consecutive_failures=3, status="error",
        error_message="unreachable: cannot connect: [Errno 111] Connection refused",
        tools=[{"name": "echo", "description": "Echo it", "inputSchema": {"type": "object"}}],
    )  # fmt: skip
    CheckResult.objects.create(server=server, checked_at=timezone.now(), outcome="unreachable",
                               error_class="connection_refused")  # fmt: skip

    html = admin_client.get(reverse("admin:servers_mcpserver_change", args=[server.pk]))
    html = html.content.decode()

    state_at = html.index("cannot connect to 127.0.0.1:8765: connection refused")
    assert state_at < html.index('name="name"')  # above the form's first input
    assert "<details><summary>raw detail</summary>" in html
    assert f'formaction="/admin/servers/mcpserver/{server.pk}/check/"' in html
    assert ">Disable</button>" in html
    assert "<code>echo</code>" in html and "Echo it" in html
    assert "connection_refused" in html  # the history table


def test_the_toggle_button_disables_and_audits(admin_client):
    from audit.models import AuditEvent

    server = McpServerFactory()

    admin_client.post(reverse("admin:servers_mcpserver_toggle", args=[server.pk]))

    server.refresh_from_db()
    assert server.is_enabled is False
    assert AuditEvent.objects.filter(entity_id=str(server.pk)).exists()
