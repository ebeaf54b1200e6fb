import json

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from credentials.models import Grant
from mcpcontrol.lib.crypto import DecryptionError
from mcpcontrol.lib.fields import Unreadable
from servers import services
from servers.models import McpServer

pytestmark = pytest.mark.django_db

SECRET = "ghp_thisIsAVerySecretToken1234"


def raw_column(server: McpServer, column: str, table: str = "mcps") -> str:
    # Raw read on purpose: the point is what sits in the database, past the field's decoding.
    key = "id" if table == "mcps" else "server_id"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE {key} = %s", [server.pk])
        return cursor.fetchone()[0]


def grant_secret(server: McpServer) -> Grant:
    return Grant.objects.get(server=server, agent=None)


def make_server(**fields) -> McpServer:
    return services.server_register(
        actor=None, name="GitHub", transport_type="streamable-http",
        url="https://mcp.example.com/mcp", auth_type="bearer", auth_secret=SECRET, **fields,
    )  # fmt: skip


@pytest.mark.sql_only("reads the stored column with raw SQL (connection.cursor)")
def test_it_stores_secrets_as_ciphertext():
    server = make_server(oauth_client_secret="client-secret-value")

    assert SECRET not in raw_column(server, "secret", "credentials_grant")
    assert raw_column(server, "secret", "credentials_grant").startswith("gAAAAA")
    assert "client-secret-value" not in raw_column(server, "oauth_client_secret")


def test_it_reads_a_secret_back_after_a_reload():
    server = make_server()

    assert grant_secret(server).secret.reveal() == SECRET


def test_a_secret_never_shows_in_repr_or_str():
    grant = grant_secret(make_server())

    assert SECRET not in repr(grant.secret)
    assert SECRET not in str(grant.secret)
    assert SECRET not in repr(grant.__dict__)
    assert SECRET not in repr(grant) + str(grant)


def test_it_raises_when_no_configured_key_can_decrypt():
    server = make_server()

    with override_settings(ENCRYPTION_KEYS=[Fernet.generate_key().decode()]):
        reloaded = grant_secret(server)
        with pytest.raises(DecryptionError):
            reloaded.secret.reveal()


def test_an_older_key_still_decrypts_after_a_new_key_is_added(settings):
    server = make_server()
    new_key = Fernet.generate_key().decode()
    settings.ENCRYPTION_KEYS = [new_key, *settings.ENCRYPTION_KEYS]

    assert grant_secret(server).secret.reveal() == SECRET


def test_rotation_re_encrypts_under_the_newest_key(settings):
    server = make_server()
    old_keys = list(settings.ENCRYPTION_KEYS)
    new_key = Fernet.generate_key().decode()
    settings.ENCRYPTION_KEYS = [new_key, *old_keys]

    call_command("rotate_encryption_keys", stdout=open("/dev/null", "w"))  # noqa: SIM115

    settings.ENCRYPTION_KEYS = [new_key]
    assert grant_secret(server).secret.reveal() == SECRET


def test_dumpdata_carries_ciphertext_never_plaintext(capsys):
    make_server(oauth_client_secret="client-secret-value")

    call_command("dumpdata", "servers.mcpserver", "credentials.grant")

    output = capsys.readouterr().out
    assert SECRET not in output
    assert "client-secret-value" not in output
    assert '"fernet:gAAAAA' in output


def test_a_dumpdata_backup_restores_every_secret(tmp_path):
    server = make_server(oauth_client_secret="client-secret-value", env={"TOKEN": "env-v"})
    backup = tmp_path / "backup.json"
    call_command("dumpdata", "servers.mcpserver", "credentials.grant", output=str(backup))
    Grant.objects.all().delete()
    McpServer.objects.all().delete()

    call_command("loaddata", str(backup), verbosity=0)

    restored = McpServer.objects.get(pk=server.pk)
    assert grant_secret(restored).secret.reveal() == SECRET
    assert restored.oauth_client_secret.reveal() == "client-secret-value"
    assert restored.env == {"TOKEN": "env-v"}


ENV_VALUE = "ghp_envTokenValueThatMustStaySecret"
HEADER_VALUE = "xk_headerKeyValueThatMustStaySecret"


def make_map_server() -> McpServer:
    return services.server_register(
        actor=None, name="Maps", transport_type="streamable-http",
        url="https://maps.example.com/mcp", env={"GITHUB_TOKEN": ENV_VALUE},
        headers={"X-Api-Key": HEADER_VALUE},
    )  # fmt: skip


@pytest.mark.sql_only("reads the stored column with raw SQL (connection.cursor)")
def test_it_stores_env_and_header_values_as_ciphertext():
    server = make_map_server()

    for column, value in (("env", ENV_VALUE), ("headers", HEADER_VALUE)):
        assert value not in raw_column(server, column)
        assert raw_column(server, column).startswith("gAAAAA")


@pytest.mark.sql_only("reads the stored column with raw SQL (connection.cursor)")
def test_it_stores_env_and_header_names_as_ciphertext_too():
    server = make_map_server()

    assert "GITHUB_TOKEN" not in raw_column(server, "env")
    assert "X-Api-Key" not in raw_column(server, "headers")


def test_it_reads_env_and_headers_back_after_a_reload():
    server = make_map_server()

    reloaded = McpServer.objects.get(pk=server.pk)
    assert reloaded.env == {"GITHUB_TOKEN": ENV_VALUE}
    assert reloaded.headers == {"X-Api-Key": HEADER_VALUE}


def test_env_or_headers_no_key_can_decrypt_degrade_that_row_only():
    server = make_map_server()

    with override_settings(ENCRYPTION_KEYS=[Fernet.generate_key().decode()]):
        reloaded = McpServer.objects.get(pk=server.pk)

    assert isinstance(reloaded.env, Unreadable)  # not {}: nobody mistakes it for "no env"
    assert not reloaded.secrets_readable
    assert ENV_VALUE not in repr(reloaded.env)


def test_rotation_re_encrypts_env_and_headers_under_the_newest_key(settings):
    server = make_map_server()
    new_key = Fernet.generate_key().decode()
    settings.ENCRYPTION_KEYS = [new_key, *settings.ENCRYPTION_KEYS]

    call_command("rotate_encryption_keys", stdout=open("/dev/null", "w"))  # noqa: SIM115

    settings.ENCRYPTION_KEYS = [new_key]
    reloaded = McpServer.objects.get(pk=server.pk)
    assert reloaded.env == {"GITHUB_TOKEN": ENV_VALUE}
    assert reloaded.headers == {"X-Api-Key": HEADER_VALUE}


def test_dumpdata_carries_env_and_headers_as_ciphertext_only(capsys):
    make_map_server()

    call_command("dumpdata", "servers.mcpserver")

    output = capsys.readouterr().out
    assert ENV_VALUE not in output
    assert HEADER_VALUE not in output
    assert "GITHUB_TOKEN" not in output  # the names are inside the encrypted document


@pytest.mark.sql_only("reads the stored column with raw SQL (connection.cursor)")
def test_loaddata_encrypts_plain_env_and_headers_objects(tmp_path):
    fixture = tmp_path / "plain.json"
    fixture.write_text(json.dumps([{"model": "servers.mcpserver", "pk": 99, "fields": {
        "name": "Plain", "path": "/plain", "transport_type": "stdio",
        "command": "npx", "env": {"GITHUB_TOKEN": ENV_VALUE},
        "headers": {"X-Api-Key": HEADER_VALUE},
        "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-01T00:00:00Z",
    }}]))  # fmt: skip

    call_command("loaddata", str(fixture), verbosity=0)

    server = McpServer.objects.get(pk=99)
    assert server.env == {"GITHUB_TOKEN": ENV_VALUE}
    assert ENV_VALUE not in raw_column(server, "env")
    assert HEADER_VALUE not in raw_column(server, "headers")
