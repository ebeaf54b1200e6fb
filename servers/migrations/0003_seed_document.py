# The seed document (issue 9) and the credentials seam (issue 8), step 1 of 3: the new
# columns, the OAuth settings folded into one `oauth` document, counts and statuses as the
# new rules define them. The grant columns go in 0004, after credentials.0002 moved them.

import django.core.validators
from django.conf import settings
from django.db import migrations, models

from mcpcontrol.lib import crypto


# Old column -> key of the new `oauth` document.
OAUTH_COLUMNS = {
    "oauth_authorization_url": "authorization_url",
    "oauth_token_url": "token_url",
    "oauth_registration_url": "registration_endpoint",
    "oauth_revocation_url": "revocation_endpoint",
    "oauth_issuer": "issuer",
    "oauth_scopes": "scope",
    "oauth_redirect_uri": "redirect_uri",
    "oauth_token_endpoint_auth_method": "token_endpoint_auth_method",
    "oauth_pkce_methods": "code_challenge_methods_supported",
}


def _client_id(server):
    # The client id was a secret column; it is public OAuth configuration now (RFC 6749 2.2).
    if server.oauth_client_id is None:
        return ""
    try:
        return server.oauth_client_id.reveal()
    except crypto.DecryptionError:
        return ""  # unreadable under the configured keys: discovery registers a new client


def seed_document_forward(apps, schema_editor):
    McpServer = apps.get_model("servers", "McpServer")
    db = schema_editor.connection.alias
    seen_paths = set()
    for server in McpServer.objects.using(db).order_by("id").iterator():
        oauth = {key: getattr(server, column) for column, key in OAUTH_COLUMNS.items()}
        oauth["client_id"] = _client_id(server)
        if server.oauth_grant_type and server.oauth_grant_type != "authorization_code":
            oauth["grant_type"] = server.oauth_grant_type
        server.oauth = {key: value for key, value in oauth.items() if value}
        server.num_tools = len(server.tools) if isinstance(server.tools, list) else 0
        # Status now says what the operator and the health engine decided: a disabled server
        # is inactive; an enabled one is active until checks fail.
        if not server.is_enabled:
            server.status = "inactive"
        elif server.status == "inactive":
            server.status = "active"
        # Paths become unique per owner; an older duplicate keeps its path, later ones get
        # their id appended.
        key = (server.path, server.owner_id, server.scope if server.owner_id else None)
        if server.path and key in seen_paths:
            server.path = f"{server.path}-{server.pk}"
        seen_paths.add((server.path, key[1], key[2]))
        server.save(update_fields=["oauth", "num_tools", "status", "path"])


def seed_document_backward(apps, schema_editor):
    McpServer = apps.get_model("servers", "McpServer")
    db = schema_editor.connection.alias
    for server in McpServer.objects.using(db).iterator():
        oauth = server.oauth or {}
        for column, key in OAUTH_COLUMNS.items():
            default = [] if column == "oauth_pkce_methods" else ""
            setattr(server, column, oauth.get(key, default))
        server.oauth_grant_type = oauth.get("grant_type", "authorization_code")
        server.oauth_client_id = oauth.get("client_id") or None
        server.save()


class Migration(migrations.Migration):

    dependencies = [
        ('auth', '0012_alter_user_first_name_max_length'),
        ('servers', '0002_encrypt_env_headers'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='mcpserver',
            name='catalog',
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name='mcpserver',
            name='check_claim',
            field=models.CharField(blank=True, max_length=32),
        ),
        migrations.AddField(
            model_name='mcpserver',
            name='check_claimed_until',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='mcpserver',
            name='num_tools',
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='mcpserver',
            name='oauth',
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name='mcpserver',
            name='oauth_headers',
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AlterField(
            model_name='mcpserver',
            name='alias',
            field=models.CharField(blank=True, max_length=64, validators=[django.core.validators.RegexValidator('^[a-z0-9][a-z0-9_-]*$', "Alias must be lower-case letters, digits, '_' or '-', starting with a letter or digit.")]),
        ),
        migrations.AlterField(
            model_name='mcpserver',
            name='init_timeout_ms',
            field=models.PositiveIntegerField(default=60000, validators=[django.core.validators.MinValueValidator(1), django.core.validators.MaxValueValidator(300000)]),
        ),
        migrations.AlterField(
            model_name='mcpserver',
            name='name',
            field=models.CharField(max_length=200),
        ),
        migrations.AlterField(
            model_name='mcpserver',
            name='status',
            field=models.CharField(choices=[('active', 'Active'), ('inactive', 'Inactive'), ('error', 'Error')], default='active', max_length=10),
        ),
        migrations.AlterField(
            model_name='mcpserver',
            name='timeout_ms',
            field=models.PositiveIntegerField(default=30000, validators=[django.core.validators.MinValueValidator(1), django.core.validators.MaxValueValidator(300000)]),
        ),
        migrations.RunPython(seed_document_forward, seed_document_backward),
        migrations.AddIndex(
            model_name='mcpserver',
            index=models.Index(fields=['name', 'owner', 'scope'], name='servers_mcp_name_42762e_idx'),
        ),
        migrations.AddIndex(
            model_name='mcpserver',
            index=models.Index(fields=['status', 'owner'], name='servers_mcp_status_f8345f_idx'),
        ),
        migrations.AddIndex(
            model_name='mcpserver',
            index=models.Index(fields=['auth_type'], name='servers_mcp_auth_ty_ccf2e1_idx'),
        ),
        migrations.AddIndex(
            model_name='mcpserver',
            index=models.Index(fields=['-created_at'], name='server_created_desc'),
        ),
        migrations.AddIndex(
            model_name='mcpserver',
            index=models.Index(fields=['is_enabled', 'check_claimed_until'], name='servers_mcp_is_enab_d0943f_idx'),
        ),
        migrations.AddConstraint(
            model_name='mcpserver',
            constraint=models.UniqueConstraint(condition=models.Q(('owner__isnull', False)), fields=('name', 'owner', 'scope'), name='server_name_unique_per_owner'),
        ),
        migrations.AddConstraint(
            model_name='mcpserver',
            constraint=models.UniqueConstraint(condition=models.Q(('owner__isnull', True)), fields=('name',), name='server_name_unique_app'),
        ),
        migrations.AddConstraint(
            model_name='mcpserver',
            constraint=models.UniqueConstraint(condition=models.Q(('owner__isnull', False), models.Q(('path', ''), _negated=True)), fields=('path', 'owner', 'scope'), name='server_path_unique_per_owner'),
        ),
        migrations.AddConstraint(
            model_name='mcpserver',
            constraint=models.UniqueConstraint(condition=models.Q(('owner__isnull', True), models.Q(('path', ''), _negated=True)), fields=('path',), name='server_path_unique_app'),
        ),
        migrations.AddConstraint(
            model_name='mcpserver',
            constraint=models.UniqueConstraint(condition=models.Q(('owner__isnull', False), models.Q(('alias', ''), _negated=True)), fields=('alias', 'owner', 'scope'), name='server_alias_unique_per_owner'),
        ),
        migrations.AddConstraint(
            model_name='mcpserver',
            constraint=models.UniqueConstraint(condition=models.Q(('owner__isnull', True), models.Q(('alias', ''), _negated=True)), fields=('alias',), name='server_alias_unique_app'),
        ),
    ]
