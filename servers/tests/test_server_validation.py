import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError

from audit.models import AuditEvent
from servers import services
from servers.models import McpServer

pytestmark = pytest.mark.django_db


def register(**fields):
    fields.setdefault("name", "Example")
    fields.setdefault("transport_type", "streamable-http")
    fields.setdefault("url", "https://mcp.example.com/mcp")
    return services.server_register(actor=None, **fields)


def errors_of(**fields) -> dict:
    with pytest.raises(ValidationError) as caught:
        register(**fields)
    return caught.value.message_dict


def test_it_registers_a_valid_server_with_defaults():
    server = register(name="My GitHub!")

    assert server.alias == ""  # none given: seed 000's fallback is the sanitized name
    assert server.effective_alias == "my_github"
    assert server.path == "/my_github"
    assert server.version == 1
    assert server.server_key == "my_github_"


@pytest.mark.parametrize("transport", ["sse", "streamable-http", "websocket"])
def test_it_requires_a_url_for_remote_transports(transport):
    assert "url" in errors_of(transport_type=transport, url="")


@pytest.mark.parametrize(
    ("transport", "url"),
    [
        ("sse", "ws://mcp.example.com/sse"),
        ("streamable-http", "ftp://mcp.example.com/mcp"),
        ("websocket", "https://mcp.example.com/ws"),
        ("streamable-http", "https:///no-host"),
    ],
)
def test_it_rejects_a_url_of_the_wrong_scheme(transport, url):
    assert "url" in errors_of(transport_type=transport, url=url)


def test_it_requires_a_command_for_stdio():
    assert "command" in errors_of(transport_type="stdio", url="", command="  ")


def test_it_requires_a_header_name_for_api_key_auth():
    assert "header_name" in errors_of(auth_type="api_key", auth_secret="k")
    assert not McpServer.objects.exists()


def test_it_rejects_a_header_name_with_spaces():
    assert "header_name" in errors_of(auth_type="api_key", header_name="X Api Key")


@pytest.mark.parametrize("alias", ["Has Caps", "with space", "-leading", "dot.ted"])
def test_it_rejects_an_alias_that_is_not_a_slug(alias):
    assert "alias" in errors_of(alias=alias)


def test_it_rejects_a_duplicate_alias():
    register(name="First", alias="shared")

    assert "alias" in errors_of(name="Second", alias="shared")


def test_it_rejects_a_duplicate_name():
    register(name="Same")

    assert "name" in errors_of(name="Same", alias="other")


def test_it_rejects_per_agent_mode_without_auth():
    assert "credential_mode" in errors_of(credential_mode="per_agent", auth_type="none")


def test_it_rejects_an_owner_on_an_app_wide_server():
    owner = User.objects.create(username="ann")

    assert "owner" in errors_of(scope="shared_app", owner=owner)


def test_it_requires_an_owner_for_user_scopes():
    assert "owner" in errors_of(scope="private_user")


def test_it_rejects_tags_that_are_not_strings():
    assert "tags" in errors_of(tags=["ok", 3])


def test_bad_input_saves_no_row_and_no_audit_event():
    errors_of(transport_type="stdio", command="", auth_type="api_key")

    assert McpServer.objects.count() == 0
    assert AuditEvent.objects.count() == 0
