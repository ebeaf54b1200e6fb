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
        reloaded = McpServer.objects.get(pk=server.pk)
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
