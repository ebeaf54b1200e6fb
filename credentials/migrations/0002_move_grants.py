# Issue 8, step 2 of 3: every stored upstream credential becomes a credentials.Grant row.
#
# From the server (shared): the API key or bearer token (auth_secret) and the OAuth grant
# (oauth_access_token, oauth_refresh_token, expiry, re-auth flag); from each AgentConnection
# (per agent): its access and refresh token. Ciphertext is copied as it is (no key needed).
# The Token rows that mirrored OAuth grants go: a grant's secret lives in one place now.
# Beat rows move to the new task names. Backward restores all of it.

import re

from django.db import migrations
from django.db.models import Q

from mcpcontrol.lib.fields import Sealed

KINDS = {"api_key": "api_key", "bearer": "bearer", "oauth": "oauth"}
TASK_RENAMES = {
    "servers.tasks.refresh_all": "servers.tasks.health_sweep",
    "tokens.tasks.oauth_tokens_refresh_due": "credentials.tasks.grant_refresh_due",
}
MIRRORS = Q(type__in=("oauth_access", "oauth_refresh"), identifier__startswith="mcp:")


def _sealed(value):
    return Sealed(value.ciphertext) if value is not None else None


def _mirror_owners(Token, db):
    """(server id, agent id) -> the user whose Token rows mirrored that grant."""
    owners = {}
    for token in Token.objects.using(db).filter(MIRRORS).only("user_id", "metadata"):
        meta = token.metadata or {}
        if "server_id" in meta:
            owners[(meta["server_id"], meta.get("agent_id"))] = token.user_id
    return owners


def _shared_grant(server, owners):
    kind = KINDS.get(server.auth_type)
    if kind == "oauth" and (server.oauth_access_token or server.oauth_refresh_token):
        return dict(
            kind=kind, secret=_sealed(server.oauth_access_token),
            refresh_secret=_sealed(server.oauth_refresh_token), expires_at=server.oauth_expires_at,
            needs_reauth=server.oauth_needs_reauth, granted_by_id=owners.get((server.pk, None)),
        )
    if kind in ("api_key", "bearer") and server.auth_secret is not None:
        return dict(kind=kind, secret=_sealed(server.auth_secret))
    return None


def forward(apps, schema_editor):
    db = schema_editor.connection.alias
    McpServer = apps.get_model("servers", "McpServer")
    AgentConnection = apps.get_model("servers", "AgentConnection")
    Grant = apps.get_model("credentials", "Grant")
    Token = apps.get_model("tokens", "Token")
    owners = _mirror_owners(Token, db)
    for server in McpServer.objects.using(db).iterator():
        values = _shared_grant(server, owners)
        if values is not None:
            Grant.objects.using(db).create(server_id=server.pk, agent_id=None, **values)
    for connection in AgentConnection.objects.using(db).select_related("server").iterator():
        kind = KINDS.get(connection.server.auth_type)
        if kind is None or connection.access_token is None:
            continue
        Grant.objects.using(db).create(
            server_id=connection.server_id, agent_id=connection.agent_id, kind=kind,
            secret=_sealed(connection.access_token),
            refresh_secret=_sealed(connection.refresh_token), expires_at=connection.expires_at,
            needs_reauth=connection.needs_reauth,
            granted_by_id=owners.get((connection.server_id, connection.agent_id)),
        )
    Token.objects.using(db).filter(MIRRORS).delete()
    _rename_tasks(apps, db, TASK_RENAMES)


def backward(apps, schema_editor):
    db = schema_editor.connection.alias
    McpServer = apps.get_model("servers", "McpServer")
    AgentConnection = apps.get_model("servers", "AgentConnection")
    Grant = apps.get_model("credentials", "Grant")
    Token = apps.get_model("tokens", "Token")
    for grant in Grant.objects.using(db).select_related("server").iterator():
        if grant.agent_id is None:
            _restore_shared(McpServer, db, grant)
        else:
            AgentConnection.objects.using(db).update_or_create(
                agent_id=grant.agent_id, server_id=grant.server_id,
                defaults=dict(access_token=_sealed(grant.secret),
                              refresh_token=_sealed(grant.refresh_secret),
                              expires_at=grant.expires_at, needs_reauth=grant.needs_reauth),
            )
        if grant.kind == "oauth" and grant.granted_by_id:
            _restore_mirrors(Token, db, grant)
    # The columns hold them again; left here, a second forward would copy them twice.
    Grant.objects.using(db).all().delete()
    _rename_tasks(apps, db, {new: old for old, new in TASK_RENAMES.items()})


def _restore_shared(McpServer, db, grant):
    if grant.kind == "oauth":
        McpServer.objects.using(db).filter(pk=grant.server_id).update(
            oauth_access_token=_sealed(grant.secret),
            oauth_refresh_token=_sealed(grant.refresh_secret),
            oauth_expires_at=grant.expires_at, oauth_needs_reauth=grant.needs_reauth,
        )
    else:
        McpServer.objects.using(db).filter(pk=grant.server_id).update(
            auth_secret=_sealed(grant.secret)
        )


def _restore_mirrors(Token, db, grant):
    identifier = "mcp:" + re.sub(r"[^a-z0-9]", "_", grant.server.name.lower()) + (
        f":agent:{grant.agent_id}" if grant.agent_id else ""
    )
    metadata = {"server_id": grant.server_id, "agent_id": grant.agent_id, "scope": grant.scope}
    common = dict(user_id=grant.granted_by_id, identifier=identifier, metadata=metadata)
    if grant.secret is not None:
        Token.objects.using(db).create(
            type="oauth_access", token=_sealed(grant.secret), expires_at=grant.expires_at, **common
        )
    if grant.refresh_secret is not None:
        Token.objects.using(db).create(
            type="oauth_refresh", token=_sealed(grant.refresh_secret), **common
        )


def _rename_tasks(apps, db, renames):
    try:
        PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    except LookupError:
        return
    for old, new in renames.items():
        PeriodicTask.objects.using(db).filter(task=old).update(task=new)


class Migration(migrations.Migration):
    dependencies = [
        ("credentials", "0001_initial"),
        ("servers", "0003_seed_document"),
        ("tokens", "0002_oauth_state"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(forward, backward)]
