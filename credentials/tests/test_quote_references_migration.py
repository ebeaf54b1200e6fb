"""Migration 0003: values stored before secret references existed keep their meaning."""

import importlib

import pytest
from django.apps import apps
from django.db import connection

from credentials.models import Grant, VariableValue
from servers.credential_port import credentials
from servers.models import McpServer
from tests.factories import AgentFactory

migration = importlib.import_module("credentials.migrations.0003_quote_reference_lookalikes")
pytestmark = [
    pytest.mark.django_db,
    pytest.mark.sql_only("steps back through old migrations of the SQL schema"),
]

OLD_ENV = {"DB": "file:relative.db", "STAGE": "env:prod", "PLAIN": "x"}


@pytest.fixture
def old_rows():
    """Rows as the code before references stored them (no validation knew of references)."""
    server = McpServer.objects.create(
        name="Old", path="/old", transport_type="stdio", command="srv", env=OLD_ENV,
        auth_type="bearer", custom_user_vars={"TOKEN": {"title": "Token"}},
    )  # fmt: skip
    agent = AgentFactory()
    Grant.objects.create(server=server, kind="bearer", secret="vault:a/b#c")
    VariableValue.objects.create(server=server, agent=agent, name="TOKEN", value="aws-sm:x")
    return server, agent


def test_it_quotes_values_that_now_read_as_references(old_rows):
    server, agent = old_rows

    migration.quote_lookalikes(apps, connection.schema_editor())

    stored = McpServer.objects.get(pk=server.pk)
    assert stored.env == {"DB": "literal:file:relative.db", "STAGE": "literal:env:prod",
                          "PLAIN": "x"}  # fmt: skip
    assert Grant.objects.get().secret.reveal() == "literal:vault:a/b#c"
    resolved = credentials().resolve(needs=[(stored, agent)])[server.pk]
    assert resolved.missing == ""
    assert resolved.env == OLD_ENV


def test_the_reverse_migration_restores_the_values(old_rows):
    server, _agent = old_rows
    migration.quote_lookalikes(apps, connection.schema_editor())

    migration.unquote(apps, connection.schema_editor())

    assert McpServer.objects.get(pk=server.pk).env == OLD_ENV
    assert VariableValue.objects.get().value.reveal() == "aws-sm:x"
