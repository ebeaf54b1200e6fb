"""Seed 004's shared schema: the collection (table) names and the indexes another application
sharing the database expects, checked in the live database on whichever backend runs the suite
(docs/storage.md maps the seed's field names to ours)."""

import pytest
from django.db import connection

from servers.models import McpServer
from tests.test_settings import start
from tokens.models import Token

# seed 004 index -> our columns (server_name = name, user_id = owner/user,
# requires_oauth = auth_type: requires_oauth is auth_type == "oauth")
SERVER_INDEXES = [
    ["name", "owner_id", "scope"],
    ["status", "owner_id"],
    ["auth_type"],
    ["created_at"],
]
TOKEN_INDEXES = [
    ["user_id", "type"],
    ["user_id", "identifier"],
    ["type", "identifier"],
    ["expires_at"],
]


def test_servers_and_tokens_use_the_seed_collection_names():
    assert McpServer._meta.db_table == "mcps"
    assert Token._meta.db_table == "tokens"


def index_columns(table: str) -> list[list[str]]:
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, table)
    return [spec["columns"] for spec in found.values() if spec["index"]]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("table", "expected"), [("mcps", SERVER_INDEXES), ("tokens", TOKEN_INDEXES)]
)
def test_the_seed_indexes_exist_in_the_database(table, expected):
    assert table in connection.introspection.table_names()
    present = index_columns(table)
    for columns in expected:
        assert columns in present, f"{table}: no index on {columns} (have {present})"


@pytest.mark.django_db
def test_recent_servers_index_is_descending():
    index = next(i for i in McpServer._meta.indexes if i.name == "server_created_desc")
    assert index.fields == ["-created_at"]
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, "mcps")
    orders = found["server_created_desc"].get("orders")
    if orders:  # SQLite and PostgreSQL report the order; the point is the definition above
        assert orders == ["DESC"]


def test_without_mongo_uri_the_sql_default_stays_and_the_backend_is_never_imported():
    code = (
        "import sys; from django.conf import settings; from servers.models import McpServer;"
        "print(settings.DATABASES['default']['ENGINE'], type(McpServer._meta.pk).__mro__[1].__name__,"
        " 'django_mongodb_backend' in sys.modules)"
    )
    result = start(MONGO_URI="", CODE=code)
    assert result.stdout.split() == [
        "started", "django_prometheus.db.backends.sqlite3", "BigAutoField", "False"
    ]  # fmt: skip


def test_mongo_uri_selects_mongodb_with_object_ids_everywhere():
    code = (
        "from django.conf import settings; from django.contrib.auth.models import User;"
        "from servers.models import McpServer; from tokens.models import Token;"
        "db = settings.DATABASES['default'];"
        "print(db['ENGINE'], db['NAME'], McpServer._meta.pk.get_internal_type(),"
        " Token._meta.pk.get_internal_type(), User._meta.pk.get_internal_type())"
    )
    # Settings only: nothing connects, so no server needs to listen.
    result = start(MONGO_URI="mongodb://127.0.0.1:9", CODE=code)
    assert result.stdout.split() == [
        "started", "mcpcontrol.mongo.backend", "mcp_gateway",
        "ObjectIdAutoField", "ObjectIdAutoField", "ObjectIdAutoField",
    ]  # fmt: skip
    named = start(MONGO_URI="mongodb://127.0.0.1:9", MONGO_DB_NAME="jarvis", CODE=code)
    assert named.stdout.split()[2] == "jarvis"


def test_a_bad_mongo_uri_stops_start_up_naming_it():
    result = start(MONGO_URI="http://127.0.0.1:27017")
    assert result.returncode != 0
    assert "MONGO_URI must start with mongodb://" in result.stderr
