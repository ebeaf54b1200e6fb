import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.sql_only(
    "steps back to the 0001 SQL schema and reads columns with raw SQL"
)

BEFORE = [("servers", "0001_initial")]
AFTER = [("servers", "0002_encrypt_env_headers")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def raw_row(pk: int) -> tuple[str, str]:
    # Raw read on purpose: the point is what sits in the column, past any field decoding.
    with connection.cursor() as cursor:
        # The 0002 schema: the table had its Django default name then (0007 names it mcps).
        cursor.execute("SELECT env, headers FROM servers_mcpserver WHERE id = %s", [pk])
        return cursor.fetchone()


@pytest.fixture
def old_server():
    """A row written by the 0001 schema (plain JSON columns); the schema is restored after."""
    apps = migrate(BEFORE)
    server = apps.get_model("servers", "McpServer").objects.create(
        name="Old", alias="old", path="/old", transport_type="stdio", command="npx",
        env={"GITHUB_TOKEN": "ghp_oldPlainValue"}, headers={"X-Api-Key": "old-plain-key"},
    )  # fmt: skip
    yield server.pk
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_it_encrypts_existing_env_and_header_values(old_server):
    migrate(AFTER)

    env, headers = raw_row(old_server)
    assert "ghp_oldPlainValue" not in env
    assert "old-plain-key" not in headers
    assert env.startswith("gAAAAA")


@pytest.mark.django_db(transaction=True)
def test_existing_values_read_back_after_the_migration(old_server):
    apps = migrate(AFTER)

    server = apps.get_model("servers", "McpServer").objects.get(pk=old_server)
    assert server.env == {"GITHUB_TOKEN": "ghp_oldPlainValue"}
    assert server.headers == {"X-Api-Key": "old-plain-key"}


@pytest.mark.django_db(transaction=True)
def test_the_reverse_migration_restores_plain_json(old_server):
    migrate(AFTER)

    apps = migrate(BEFORE)

    server = apps.get_model("servers", "McpServer").objects.get(pk=old_server)
    assert server.env == {"GITHUB_TOKEN": "ghp_oldPlainValue"}
    assert server.headers == {"X-Api-Key": "old-plain-key"}
