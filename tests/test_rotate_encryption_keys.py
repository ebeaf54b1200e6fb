"""manage.py rotate_encryption_keys: every sealed field of every model, in batches, while
the server keeps reading; resumable; verified at the end."""

import threading
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections

from credentials.models import Grant, VariableValue
from mcpcontrol.lib import crypto
from mcpcontrol.lib.fields import Sealed
from mcpcontrol.management.commands.rotate_encryption_keys import rotate_value
from servers.models import McpServer
from tests.factories import AgentFactory, GrantFactory, McpServerFactory, TokenFactory
from tokens.models import Token

pytestmark = pytest.mark.sql_only("reads every sealed column with raw SQL (connection.cursor)")

IS_POSTGRES = settings.DATABASES["default"]["ENGINE"].endswith(".postgresql")
NEW_KEY = Fernet.generate_key().decode()
# (table, column): every sealed column the fixture fills
COLUMNS = [
    ("mcps", "env"), ("mcps", "headers"),
    ("mcps", "oauth_client_secret"), ("credentials_grant", "secret"),
    ("credentials_grant", "refresh_secret"), ("credentials_variablevalue", "value"),
    ("tokens", "token"),
]  # fmt: skip


def raw_values() -> list[str]:
    """Every stored ciphertext, read past the fields (the point is what the columns hold)."""
    found = []
    with connection.cursor() as cursor:
        for table, column in COLUMNS:
            cursor.execute(f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL")
            found += [value for (value,) in cursor.fetchall()]
    return found


def stored() -> list[tuple]:
    """Every plaintext, as the application reads it."""
    servers = [
        (s.env, s.headers, s.oauth_client_secret.reveal()) for s in McpServer.objects.order_by("pk")
    ]
    grants = [(g.secret.reveal(), g.refresh_secret.reveal()) for g in Grant.objects.order_by("pk")]
    values = [v.value.reveal() for v in VariableValue.objects.order_by("pk")]
    return [*servers, *grants, *values, *(t.token.reveal() for t in Token.objects.order_by("pk"))]


def make_rows(count: int = 3) -> None:
    for n in range(count):
        server = McpServerFactory(
            env={"TOKEN": f"env-{n}"}, headers={"X-Key": f"header-{n}"},
            oauth_client_secret=f"client-secret-{n}",
        )  # fmt: skip
        GrantFactory(server=server, kind="bearer", secret=f"grant-{n}", refresh_secret=f"r-{n}")
        VariableValue.objects.create(server=server, agent=AgentFactory(), name="V", value=f"v{n}")
        TokenFactory(token=f"token-{n}")


def rotate(*args: str, **options) -> str:
    out = StringIO()
    call_command("rotate_encryption_keys", *args, stdout=out, **options)
    return out.getvalue()


@pytest.fixture
def new_key_first(settings):
    """Call it once the rows are written: the new key goes first, the old ones stay listed
    (the rotation's starting point)."""

    def start() -> None:
        settings.ENCRYPTION_KEYS = [NEW_KEY, *settings.ENCRYPTION_KEYS]

    return start


@pytest.mark.django_db
def test_it_re_encrypts_every_sealed_field_of_every_model(settings):
    make_rows()
    before = stored()
    settings.ENCRYPTION_KEYS = [NEW_KEY, *settings.ENCRYPTION_KEYS]

    output = rotate("--batch-size", "2")

    settings.ENCRYPTION_KEYS = [NEW_KEY]  # the old key dropped: everything must still read
    assert stored() == before
    assert all(crypto.is_current(value) for value in raw_values())
    assert "servers.McpServer: 9 values, 9 re-encrypted, 0 already current" in output
    assert "credentials.Grant: 6 values, 6 re-encrypted" in output
    assert "tokens.Token: 3 values, 3 re-encrypted" in output
    assert output.endswith("verified: every stored secret decrypts with the newest key alone\n")


@pytest.mark.django_db
def test_the_dry_run_counts_and_writes_nothing(new_key_first):
    make_rows()
    before = raw_values()
    new_key_first()

    output = rotate("--dry-run")

    assert raw_values() == before
    assert "credentials.VariableValue: 3 values, 3 would be re-encrypted, 0 already" in output
    assert output.endswith("dry run: nothing was written\n")


@pytest.mark.django_db
def test_a_second_run_finds_everything_current_and_writes_nothing(new_key_first):
    make_rows()
    new_key_first()
    rotate()
    after_first = raw_values()

    output = rotate()

    assert raw_values() == after_first
    assert "servers.McpServer: 9 values, 0 re-encrypted, 9 already current" in output


@pytest.mark.django_db
def test_an_interrupted_run_leaves_everything_readable_and_a_rerun_finishes(
    settings, new_key_first
):
    """The output pipe closes after the first batch (`... | head -1`): the run stops there."""
    make_rows(5)
    before = stored()
    new_key_first()

    class ClosedAfterOneLine(StringIO):
        def write(self, text: str) -> int:
            if self.getvalue():
                raise BrokenPipeError
            return super().write(text)

    with pytest.raises(BrokenPipeError):
        call_command(
            "rotate_encryption_keys", "--batch-size", "2", verbosity=2, stdout=ClosedAfterOneLine()
        )
    current = [crypto.is_current(value) for value in raw_values()]

    assert 0 < sum(current) < len(current)  # stopped part-way
    assert stored() == before
    output = rotate("--batch-size", "2")
    assert "verified" in output
    assert all(crypto.is_current(value) for value in raw_values())
    settings.ENCRYPTION_KEYS = [NEW_KEY]
    assert stored() == before


@pytest.mark.django_db
def test_a_value_written_meanwhile_wins_over_the_rotation(new_key_first):
    grant = GrantFactory(secret="old-value")
    new_key_first()
    read = Grant.objects.filter(pk=grant.pk).values_list("secret", flat=True).get()
    Grant.objects.filter(pk=grant.pk).update(secret="written-meanwhile")

    assert rotate_value(Grant, "secret", grant.pk, read.ciphertext) is False

    assert Grant.objects.get(pk=grant.pk).secret.reveal() == "written-meanwhile"


@pytest.mark.django_db
def test_an_unreadable_value_is_reported_and_fails_the_verification(new_key_first):
    make_rows()
    lost = GrantFactory(secret="x")
    foreign = Fernet(Fernet.generate_key()).encrypt(b"lost-secret").decode()
    Grant.objects.filter(pk=lost.pk).update(secret=Sealed(foreign))
    new_key_first()
    out = StringIO()

    with pytest.raises(CommandError) as caught:
        call_command("rotate_encryption_keys", stdout=out)

    assert "(credentials.Grant.secret: 1)" in str(caught.value)
    assert f"secret: 1 unreadable with every configured key (ids {lost.pk})" in out.getvalue()
    readable = [v for v in raw_values() if v != foreign]
    assert all(crypto.is_current(value) for value in readable)  # the rest was rotated


def _reader(expected: list[tuple], errors: list[str], seen: set[bool], stop: threading.Event):
    """A web process meanwhile: reads every secret in a loop, as requests would."""
    try:
        while not stop.is_set():
            try:
                if stored() != expected:
                    errors.append("a read returned the wrong plaintext")
                seen.update(crypto.is_current(v) for v in raw_values())
            except Exception as exc:  # any failed read is the finding
                errors.append(repr(exc))
    finally:
        connections.close_all()


@pytest.mark.postgres_only
@pytest.mark.skipif(
    not IS_POSTGRES,
    reason="the test database on SQLite is in memory with a shared cache, whose table locks "
    "fail concurrent reads (a WAL file database, as deployed, has none)",
)
@pytest.mark.django_db(transaction=True)
def test_reads_in_another_thread_never_fail_during_the_rotation(new_key_first):
    make_rows(40)
    expected = stored()
    new_key_first()
    errors: list[str] = []
    seen: set[bool] = set()
    stop = threading.Event()
    reader = threading.Thread(target=_reader, args=(expected, errors, seen, stop))
    reader.start()
    try:
        rotate("--batch-size", "5")
    finally:
        stop.set()
        reader.join(timeout=60)

    assert errors == []
    assert seen == {True, False}  # it read while values were under both keys
