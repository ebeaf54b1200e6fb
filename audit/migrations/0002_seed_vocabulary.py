# Seed 004's audit vocabulary: entity types server/agent/token (not model names) and
# actions create/update/delete (not token_stored and kin). Old rows are rewritten so the
# seed's filters (?entity_type=server&action=create) find them too.

from django.db import migrations, models

ENTITY_TYPES = {"mcpserver": "server", "agentconnection": "connection"}
# (old action, entity type or None for any) -> new action
ACTIONS = {
    ("token_stored", None): "create",
    ("token_refreshed", "token"): "update",
    ("token_refreshed", None): "refresh",
    ("token_refresh_failed", None): "refresh_failed",
    ("token_revoked", None): "revoke",
    ("token_deleted", None): "delete",
}


def forward(apps, schema_editor):
    AuditEvent = apps.get_model("audit", "AuditEvent")
    rows = AuditEvent.objects.using(schema_editor.connection.alias)
    for old, new in ENTITY_TYPES.items():
        rows.filter(entity_type=old).update(entity_type=new)
    for (old, entity), new in ACTIONS.items():
        matching = rows.filter(action=old)
        rows_of = matching.filter(entity_type=entity) if entity else matching
        rows_of.update(action=new)


def backward(apps, schema_editor):
    AuditEvent = apps.get_model("audit", "AuditEvent")
    rows = AuditEvent.objects.using(schema_editor.connection.alias)
    for old, new in ENTITY_TYPES.items():
        rows.filter(entity_type=new).update(entity_type=old)
    rows.filter(action="refresh").update(action="token_refreshed")
    rows.filter(action="refresh_failed").update(action="token_refresh_failed")
    rows.filter(action="revoke").update(action="token_revoked")


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0001_initial'),
    ]

    operations = [
        migrations.RunPython(forward, backward),
        migrations.AlterField(
            model_name='auditevent',
            name='action',
            field=models.CharField(choices=[('create', 'Create'), ('update', 'Update'), ('delete', 'Delete'), ('toggle', 'Toggle'), ('tools_changed', 'Tools Changed'), ('status_changed', 'Status Changed'), ('secret_read', 'Secret Read'), ('refresh', 'Refresh'), ('refresh_failed', 'Refresh Failed'), ('revoke', 'Revoke'), ('needs_reauth', 'Needs Reauth'), ('oauth_discovered', 'Oauth Discovered'), ('oauth_registered', 'Oauth Registered')], db_index=True, max_length=32),
        ),
    ]
