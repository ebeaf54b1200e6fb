from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from mcpcontrol.lib.fields import Sealed


@pytest.mark.django_db
def test_every_model_change_has_a_migration():
    out = StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out)
    except SystemExit:
        pytest.fail(f"models changed without a migration:\n{out.getvalue()}")


# --- credentials.0002_move_grants with data in it (issue 8) ------------------------------
# The state just before the move: grants on McpServer/AgentConnection, mirror Token rows.
BEFORE_MOVE = [
    ("credentials", "0001_initial"),
    ("servers", "0003_seed_document"),
    ("tokens", "0002_oauth_state"),
]
EXPIRES = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def _migrate(targets):
    """Migrate to `targets` the way Django's own migration tests do; the historical apps."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()  # the applied set changed: reload before the next plan
    return executor.loader.project_state(targets).apps


def _latest():
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


def _old_rows(apps):
    """Grants where the code before issue 8 kept them, created through the historical models."""
    user = apps.get_model("auth", "User").objects.create(username="owner")
    Server = apps.get_model("servers", "McpServer")
    shared = Server.objects.create(
        name="Shared OAuth", alias="shared", url="https://a.example/mcp", auth_type="oauth",
        oauth_access_token=Sealed.seal("at-shared"), oauth_refresh_token=Sealed.seal("rt-shared"),
        oauth_expires_at=EXPIRES, oauth_needs_reauth=True,
    )  # fmt: skip
    keyed = Server.objects.create(
        name="Keyed", alias="keyed", url="https://b.example/mcp", auth_type="bearer",
        auth_secret=Sealed.seal("bearer-secret"),
    )  # fmt: skip
    per_agent = Server.objects.create(
        name="Per Agent", alias="per-agent", url="https://c.example/mcp", auth_type="oauth",
        credential_mode="per_agent",
    )  # fmt: skip
    agent = apps.get_model("servers", "Agent").objects.create(name="bot", owner=user)
    apps.get_model("servers", "AgentConnection").objects.create(
        agent=agent, server=per_agent, access_token=Sealed.seal("at-agent"),
        refresh_token=Sealed.seal("rt-agent"), expires_at=EXPIRES,
    )  # fmt: skip
    Token = apps.get_model("tokens", "Token")
    for kind, value in (("oauth_access", "at-shared"), ("oauth_refresh", "rt-shared")):
        Token.objects.create(
            user=user, type=kind, identifier="mcp:shared_oauth", token=Sealed.seal(value),
            metadata={"server_id": shared.pk, "agent_id": None},
        )  # fmt: skip
    Token.objects.create(user=user, type="api_key", identifier="own", token=Sealed.seal("mine"))
    return shared.pk, keyed.pk, per_agent.pk, agent.pk


def _grants(apps):
    Grant = apps.get_model("credentials", "Grant")
    return {(g.server_id, g.agent_id): g for g in Grant.objects.all()}


@pytest.mark.sql_only(
    "moves rows written by the schema before issue 8; a MongoDB database only ever starts at "
    "the current schema (its rows use integer ids in JSON metadata that ObjectIds cannot fill)"
)
@pytest.mark.django_db(transaction=True)
def test_the_grant_move_carries_secrets_forward_and_back():
    """Forward: one Grant per stored credential, secrets readable with the same keys, the
    mirror Token rows gone. Backward: the columns and the mirrors come back."""
    try:
        shared, keyed, per_agent, agent = _old_rows(_migrate(BEFORE_MOVE))

        grants = _grants(_migrate(_latest()))

        assert set(grants) == {(shared, None), (keyed, None), (per_agent, agent)}
        assert grants[shared, None].secret.reveal() == "at-shared"
        assert grants[shared, None].refresh_secret.reveal() == "rt-shared"
        assert (grants[shared, None].expires_at, grants[shared, None].needs_reauth) == (
            EXPIRES, True)  # fmt: skip
        assert grants[shared, None].granted_by.username == "owner"
        assert (grants[keyed, None].kind, grants[keyed, None].secret.reveal()) == (
            "bearer", "bearer-secret")  # fmt: skip
        assert grants[per_agent, agent].refresh_secret.reveal() == "rt-agent"
        from tokens.models import Token

        assert list(Token.objects.values_list("type", flat=True)) == ["api_key"]

        apps = _migrate(BEFORE_MOVE)

        restored = apps.get_model("servers", "McpServer").objects.get(pk=shared)
        assert restored.oauth_access_token.reveal() == "at-shared"
        assert restored.oauth_refresh_token.reveal() == "rt-shared"
        assert (restored.oauth_expires_at, restored.oauth_needs_reauth) == (EXPIRES, True)
        keyed_row = apps.get_model("servers", "McpServer").objects.get(pk=keyed)
        assert keyed_row.auth_secret.reveal() == "bearer-secret"
        link = apps.get_model("servers", "AgentConnection").objects.get(agent_id=agent)
        assert (link.access_token.reveal(), link.refresh_token.reveal()) == ("at-agent", "rt-agent")
        mirrors = apps.get_model("tokens", "Token").objects.exclude(type="api_key")
        assert sorted((t.type, t.token.reveal()) for t in mirrors) == [
            ("oauth_access", "at-shared"), ("oauth_refresh", "rt-shared")]  # fmt: skip
    finally:
        _migrate(_latest())


@pytest.mark.django_db(transaction=True)
def test_agents_from_before_the_gateway_keep_direct_configs_and_new_ones_use_it():
    try:
        apps = _migrate([("servers", "0008_collection_names")])
        user = apps.get_model("auth", "User").objects.create(username="old-owner")
        old = apps.get_model("servers", "Agent").objects.create(name="old", owner=user)

        apps = _migrate(_latest())

        Agent = apps.get_model("servers", "Agent")
        assert Agent.objects.get(pk=old.pk).config_mode == "direct"
        assert Agent.objects.create(name="new", owner_id=user.pk).config_mode == "gateway"
    finally:
        _migrate(_latest())
