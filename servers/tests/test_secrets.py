import json

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from mcpcontrol.lib.crypto import DecryptionError
from servers import services
from servers.models import McpServer

pytestmark = pytest.mark.django_db

SECRET = "ghp_thisIsAVerySecretToken1234"


def raw_column(server: McpServer, column: str) -> str:
    # Raw read on purpose: the point is what sits in the database, past the field's decoding.
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM servers_mcpserver WHERE id = %s", [server.pk])
        return cursor.fetchone()[0]


def make_server(**fields) -> McpServer:
    return services.server_register(
        actor=None, name="GitHub", transport_type="streamable-http",
        url="https://mcp.example.com/mcp", auth_type="bearer", auth_secret=SECRET, **fields,
    )  # fmt: skip


def test_it_stores_secrets_as_ciphertext():
    server = make_server(oauth_client_secret="client-secret-value")

    assert SECRET not in raw_column(server, "auth_secret")
    assert raw_column(server, "auth_secret").startswith("gAAAAA")
    assert "client-secret-value" not in raw_column(server, "oauth_client_secret")


def test_it_reads_a_secret_back_after_a_reload():
    server = make_server()

    assert McpServer.objects.get(pk=server.pk).auth_secret.reveal() == SECRET


def test_a_secret_never_shows_in_repr_or_str():
    server = McpServer.objects.get(pk=make_server().pk)

    assert SECRET not in repr(server.auth_secret)
    assert SECRET not in str(server.auth_secret)
    assert SECRET not in repr(server.__dict__)


def test_it_raises_when_no_configured_key_can_decrypt():
    server = make_server()

    with override_settings(ENCRYPTION_KEYS=[Fernet.generate_key().decode()]):
        reloaded = McpServer.objects.only("auth_secret").get(pk=server.pk)
        with pytest.raises(DecryptionError):
            reloaded.auth_secret.reveal()


def test_an_older_key_still_decrypts_after_a_new_key_is_added(settings):
    server = make_server()
    new_key = Fernet.generate_key().decode()
    settings.ENCRYPTION_KEYS = [new_key, *settings.ENCRYPTION_KEYS]

    assert McpServer.objects.get(pk=server.pk).auth_secret.reveal() == SECRET


def test_rotation_re_encrypts_under_the_newest_key(settings):
    server = make_server()
    old_keys = list(settings.ENCRYPTION_KEYS)
    new_key = Fernet.generate_key().decode()
    settings.ENCRYPTION_KEYS = [new_key, *old_keys]

    call_command("rotate_encryption_keys", stdout=open("/dev/null", "w"))  # noqa: SIM115

    settings.ENCRYPTION_KEYS = [new_key]
    assert McpServer.objects.get(pk=server.pk).auth_secret.reveal() == SECRET


def test_dumpdata_carries_no_secret(capsys):
    make_server()

    call_command("dumpdata", "servers.mcpserver")

    output = capsys.readouterr().out
    assert SECRET not in output
    assert "gAAAAA" not in output


ENV_VALUE = "ghp_envTokenValueThatMustStaySecret"
HEADER_VALUE = "xk_headerKeyValueThatMustStaySecret"


def make_map_server() -> McpServer:
    return services.server_register(
        actor=None, name="Maps", transport_type="streamable-http",
        url="https://maps.example.com/mcp", env={"GITHUB_TOKEN": ENV_VALUE},
        headers={"X-Api-Key": HEADER_VALUE},
    )  # fmt: skip


def test_it_stores_env_and_header_values_as_ciphertext():
    server = make_map_server()

    for column, value in (("env", ENV_VALUE), ("headers", HEADER_VALUE)):
        assert value not in raw_column(server, column)
        assert raw_column(server, column).startswith("gAAAAA")


def test_it_stores_env_and_header_names_as_ciphertext_too():
    server = make_map_server()

    assert "GITHUB_TOKEN" not in raw_column(server, "env")
    assert "X-Api-Key" not in raw_column(server, "headers")


def test_it_reads_env_and_headers_back_after_a_reload():
    server = make_map_server()

    reloaded = McpServer.objects.get(pk=server.pk)
    assert reloaded.env == {"GITHUB_TOKEN": ENV_VALUE}
    assert reloaded.headers == {"X-Api-Key": HEADER_VALUE}


def test_it_raises_when_no_configured_key_can_decrypt_env_or_headers():
    server = make_map_server()

    wrong_key = override_settings(ENCRYPTION_KEYS=[Fernet.generate_key().decode()])

    with wrong_key, pytest.raises(DecryptionError):
        McpServer.objects.get(pk=server.pk)


def test_rotation_re_encrypts_env_and_headers_under_the_newest_key(settings):
    server = make_map_server()
    new_key = Fernet.generate_key().decode()
    settings.ENCRYPTION_KEYS = [new_key, *settings.ENCRYPTION_KEYS]

    call_command("rotate_encryption_keys", stdout=open("/dev/null", "w"))  # noqa: SIM115

    settings.ENCRYPTION_KEYS = [new_key]
    reloaded = McpServer.objects.get(pk=server.pk)
    assert reloaded.env == {"GITHUB_TOKEN": ENV_VALUE}
    assert reloaded.headers == {"X-Api-Key": HEADER_VALUE}


def test_dumpdata_keeps_env_and_header_names_but_no_values(capsys):
    make_map_server()

    call_command("dumpdata", "servers.mcpserver")

    output = capsys.readouterr().out
    assert ENV_VALUE not in output
    assert HEADER_VALUE not in output
    assert "GITHUB_TOKEN" in output


def test_loaddata_encrypts_plain_env_and_headers_objects(tmp_path):
    fixture = tmp_path / "plain.json"
    fixture.write_text(json.dumps([{"model": "servers.mcpserver", "pk": 99, "fields": {
        "name": "Plain", "alias": "plain", "path": "/plain", "transport_type": "stdio",
        "command": "npx", "env": {"GITHUB_TOKEN": ENV_VALUE},
        "headers": {"X-Api-Key": HEADER_VALUE},
        "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-01T00:00:00Z",
    }}]))  # fmt: skip

    call_command("loaddata", str(fixture), verbosity=0)

    server = McpServer.objects.get(pk=99)
    assert server.env == {"GITHUB_TOKEN": ENV_VALUE}
    assert ENV_VALUE not in raw_column(server, "env")
    assert HEADER_VALUE not in raw_column(server, "headers")
