from io import StringIO

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.core.management import call_command
from django.urls import reverse

from audit.models import AuditEvent
from servers import services
from servers.models import Agent, AgentConnection, McpServer
from tests.gaps import PERMISSION_JOIN
from tokens.models import Token

pytestmark = pytest.mark.django_db

MODELS = [McpServer, Agent, AgentConnection, Token, AuditEvent]


@pytest.fixture(autouse=True)
def _no_wait_for_checks_after_save(settings):
    """A save enqueues a check and waits for it; no worker runs here: don't wait."""
    settings.MCPCONTROL_REFRESH_WAIT_SECONDS = 0


@pytest.fixture
def demo(admin_client):
    call_command("load_demo", verbosity=0)
    AuditEvent.objects.create(action="create", entity_type="mcpserver", entity_id="1")
    return admin_client


def admin_url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_changelist_renders_with_the_demo_data(demo, model):
    response = demo.get(admin_url(model, "changelist"))

    assert response.status_code == 200
    assert response.context["cl"].result_count >= 1


@pytest.mark.parametrize("model", list(admin.site._registry), ids=lambda m: m.__name__)
def test_every_registered_changelist_renders(demo, model):
    call_command("ensure_schedules", stdout=StringIO())  # periodic task rows to list

    assert demo.get(admin_url(model, "changelist")).status_code == 200


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_change_page_renders_with_the_demo_data(demo, model):
    for obj in model.objects.all():
        assert demo.get(admin_url(model, "change", obj.pk)).status_code == 200


@pytest.mark.parametrize(
    "model", [McpServer, Agent, AgentConnection, Token], ids=lambda m: m.__name__
)
def test_every_add_page_renders(demo, model):
    assert demo.get(admin_url(model, "add")).status_code == 200


def test_the_server_page_never_shows_a_stored_secret(demo):
    server = McpServer.objects.get(name="GitHub")

    page = demo.get(admin_url(McpServer, "change", server.pk)).content.decode()

    assert "demo-github-token-not-real" not in page
    assert server.grants.get().secret.ciphertext not in page
    assert "bearer stored" in page


ENV_VALUE = "ghp_envValueThatMustStaySecret"
HEADER_VALUE = "headerValueThatMustStaySecret"


@pytest.fixture
def map_server() -> McpServer:
    return services.server_register(
        actor=None, name="Maps", transport_type="streamable-http",
        url="https://maps.example.com/mcp", env={"GITHUB_TOKEN": ENV_VALUE},
        headers={"X-Api-Key": HEADER_VALUE},
    )  # fmt: skip


def change_form(server: McpServer, **overrides: str) -> dict[str, str]:
    """The change form as a browser would post it, untouched env/headers inputs included."""
    return {
        "name": server.name, "alias": server.alias, "path": server.path,
        "transport_type": server.transport_type, "url": server.url, "auth_type": "none",
        "credential_mode": "shared", "scope": "shared_app", "stderr": "ignore",
        "timeout_ms": 30000, "init_timeout_ms": 60000, "oauth_grant_type": "authorization_code",
        "tags": "[]", "args": "[]", "custom_user_vars": "{}", "mcp_options": "{}",
        "is_enabled": "on",
        "env_input": "", "headers_input": "", "expected_version": server.version, **overrides,
    }  # fmt: skip


def test_the_server_page_never_shows_env_or_header_values(admin_client, map_server):
    page = admin_client.get(admin_url(McpServer, "change", map_server.pk)).content.decode()

    assert ENV_VALUE not in page
    assert HEADER_VALUE not in page


def test_the_server_page_lists_the_stored_env_and_header_names(admin_client, map_server):
    page = admin_client.get(admin_url(McpServer, "change", map_server.pk)).content.decode()

    assert "GITHUB_TOKEN" in page
    assert "X-Api-Key" in page


def test_empty_env_and_header_inputs_keep_the_stored_values(admin_client, map_server):
    response = admin_client.post(
        admin_url(McpServer, "change", map_server.pk), change_form(map_server, description="d")
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    server = McpServer.objects.get(pk=map_server.pk)
    assert server.description == "d"
    assert server.env == {"GITHUB_TOKEN": ENV_VALUE}
    assert server.headers == {"X-Api-Key": HEADER_VALUE}


def test_an_env_input_replaces_the_stored_env(admin_client, map_server):
    form = change_form(map_server, env_input='{"OTHER": "o-value"}')

    admin_client.post(admin_url(McpServer, "change", map_server.pk), form)

    assert McpServer.objects.get(pk=map_server.pk).env == {"OTHER": "o-value"}


def test_a_redacted_value_in_a_header_input_keeps_the_stored_value(admin_client, map_server):
    form = change_form(map_server, headers_input='{"X-Api-Key": "[redacted]", "X-B": "b"}')

    admin_client.post(admin_url(McpServer, "change", map_server.pk), form)

    server = McpServer.objects.get(pk=map_server.pk)
    assert server.headers == {"X-Api-Key": HEADER_VALUE, "X-B": "b"}


def test_an_env_input_that_is_not_an_object_of_strings_is_a_field_error(admin_client, map_server):
    form = change_form(map_server, env_input='{"A": 1}')

    response = admin_client.post(admin_url(McpServer, "change", map_server.pk), form)

    assert response.status_code == 200
    assert "env_input" in response.context["adminform"].form.errors
    assert McpServer.objects.get(pk=map_server.pk).env == {"GITHUB_TOKEN": ENV_VALUE}


def test_a_rejected_form_does_not_echo_the_typed_env_back(admin_client, map_server):
    form = change_form(map_server, url="ftp://x", env_input=f'{{"T": "{ENV_VALUE}x"}}')

    page = admin_client.post(admin_url(McpServer, "change", map_server.pk), form)

    assert ENV_VALUE not in page.content.decode()


def test_the_changelist_filters_by_transport(demo):
    response = demo.get(admin_url(McpServer, "changelist"), {"transport_type__exact": "websocket"})

    assert [s.name for s in response.context["cl"].result_list] == ["Realtime Feed"]


def test_adding_a_server_in_the_admin_seals_the_secret_and_audits(admin_client):
    response = admin_client.post(admin_url(McpServer, "add"), {
        "name": "Search", "transport_type": "streamable-http", "url": "https://search.example.com/mcp",
        "auth_type": "api_key", "header_name": "X-API-Key", "prefix": "", "auth_secret_input": "k-123",
        "credential_mode": "shared", "scope": "shared_app", "stderr": "ignore", "timeout_ms": 30000,
        "init_timeout_ms": 60000, "oauth_grant_type": "authorization_code", "tags": "[]", "args": "[]",
        "custom_user_vars": "{}", "mcp_options": "{}",
        "is_enabled": "on",
    })  # fmt: skip

    assert response.status_code == 302, response.context["adminform"].form.errors
    server = McpServer.objects.get(name="Search")
    assert server.grants.get().secret.reveal() == "k-123"
    assert server.effective_alias == "search"
    assert AuditEvent.objects.filter(action="create", entity_id=str(server.pk)).exists()


def test_the_admin_shows_a_field_error_for_a_bad_url(admin_client):
    response = admin_client.post(admin_url(McpServer, "add"), {
        "name": "Bad", "transport_type": "sse", "url": "ws://x", "auth_type": "none",
        "credential_mode": "shared", "scope": "shared_app", "stderr": "ignore", "timeout_ms": 1,
        "init_timeout_ms": 1, "oauth_grant_type": "authorization_code", "tags": "[]", "args": "[]",
        "custom_user_vars": "{}", "mcp_options": "{}",
    })  # fmt: skip

    assert response.status_code == 200
    assert "url" in response.context["adminform"].form.errors
    assert not McpServer.objects.filter(name="Bad").exists()


def test_the_disable_action_disables_and_audits(demo):
    everything = McpServer.objects.get(name="Everything")

    demo.post(
        admin_url(McpServer, "changelist"),
        {"action": "disable_servers", "_selected_action": [everything.pk]},
    )

    assert McpServer.objects.get(pk=everything.pk).is_enabled is False
    assert AuditEvent.objects.filter(action="toggle", entity_id=str(everything.pk)).exists()


def test_audit_events_are_read_only(demo):
    event = AuditEvent.objects.first()

    demo.post(admin_url(AuditEvent, "change", event.pk), {"action": "delete"})

    assert AuditEvent.objects.get(pk=event.pk).action == "create"
    assert demo.get(admin_url(AuditEvent, "add")).status_code == 403


def test_ensure_admin_creates_the_admin_once(settings, capsys):
    settings.MCPCONTROL_ADMIN_PASSWORD = "from-the-environment"  # MCPCONTROL_ADMIN_PASSWORD

    call_command("ensure_admin")
    call_command("ensure_admin")

    user = User.objects.get(username="admin")
    assert user.is_superuser and user.check_password("from-the-environment")
    assert "from-the-environment" not in capsys.readouterr().out


def test_a_header_the_model_refuses_is_a_form_error_not_an_error_page(admin_client):
    response = admin_client.post(admin_url(McpServer, "add"), {
        "name": "Hostile", "transport_type": "streamable-http", "url": "https://h.example.com/mcp",
        "auth_type": "bearer", "auth_secret_input": "tok\r\nX-Evil: 1", "credential_mode": "shared",
        "scope": "shared_app", "stderr": "ignore", "timeout_ms": 30000, "init_timeout_ms": 60000,
        "oauth_grant_type": "authorization_code", "tags": "[]", "args": "[]",
        "custom_user_vars": "{}", "mcp_options": "{}", "headers_input": '{"Host": "evil"}',
    })  # fmt: skip

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "headers_input" in errors and "auth_secret_input" in errors
    assert not McpServer.objects.filter(name="Hostile").exists()


def _console_user(*codenames: str) -> User:
    from django.contrib.auth.models import Permission

    user = User.objects.create_user("operator", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


@PERMISSION_JOIN
def test_a_viewer_reads_a_server_page_without_its_inputs(client, map_server):
    client.force_login(_console_user("view_mcpserver"))

    response = client.get(admin_url(McpServer, "change", map_server.pk))

    page = response.content.decode()
    assert response.status_code == 200
    assert map_server.name in page and "GITHUB_TOKEN" in page
    assert 'name="env_input"' not in page and ENV_VALUE not in page


def test_an_owner_without_configure_stdio_edits_their_server_but_not_its_env(client, map_server):
    owner = _console_user("view_mcpserver", "change_mcpserver")
    McpServer.objects.filter(pk=map_server.pk).update(scope="private_user", owner=owner)
    map_server.refresh_from_db()
    client.force_login(owner)

    page = client.get(admin_url(McpServer, "change", map_server.pk)).content.decode()
    form = change_form(map_server, description="mine", scope="private_user", owner=owner.pk,
                       env_input='{"SNEAKY": "x"}')  # fmt: skip
    response = client.post(admin_url(McpServer, "change", map_server.pk), form)

    assert 'name="env_input"' not in page
    assert response.status_code == 302, response.context["adminform"].form.errors
    server = McpServer.objects.get(pk=map_server.pk)
    assert server.description == "mine"
    assert server.env == {"GITHUB_TOKEN": ENV_VALUE}
