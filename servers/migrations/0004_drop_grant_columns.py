# Issue 8, step 3 of 3: the grant columns and their indexes leave servers, now that
# credentials.0002 moved every grant into credentials.Grant (reversible: 0002's backward
# step moves them back after these columns are re-added).

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('servers', '0003_seed_document'),
        ('credentials', '0002_move_grants'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='agentconnection',
            name='servers_age_expires_f76229_idx',
        ),
        migrations.RemoveIndex(
            model_name='mcpserver',
            name='servers_mcp_scope_378d40_idx',
        ),
        migrations.RemoveIndex(
            model_name='mcpserver',
            name='servers_mcp_is_enab_bc5f65_idx',
        ),
        migrations.RemoveIndex(
            model_name='mcpserver',
            name='servers_mcp_oauth_e_0df9fe_idx',
        ),
        migrations.RemoveField(
            model_name='agentconnection',
            name='access_token',
        ),
        migrations.RemoveField(
            model_name='agentconnection',
            name='expires_at',
        ),
        migrations.RemoveField(
            model_name='agentconnection',
            name='needs_reauth',
        ),
        migrations.RemoveField(
            model_name='agentconnection',
            name='refresh_claimed_at',
        ),
        migrations.RemoveField(
            model_name='agentconnection',
            name='refresh_token',
        ),
        migrations.RemoveField(
            model_name='mcpserver',
            name='auth_secret',
        ),
        migrations.RemoveField(
            model_name='mcpserver',
            name='check_claimed_at',
        ),
        migrations.RemoveField(
            model_name='mcpserver',
            name='oauth_access_token',
        ),
        migrations.RemoveField(
            model_name='mcpserver',
            name='oauth_authorization_url',
        ),
        migrations.RemoveField(
            model_name='mcpserver',
            name='oauth_client_id',
        ),
        migrations.RemoveField(
            model_name='mcpserver',
            name='oauth_expires_at',
        ),
        migrations.RemoveField(
            model_name='mcpserver',
            name='oauth_grant_type',
        ),
        migrations.RemoveField(
            model_name='mcpserver',
            name='oauth_issuer',
        ),
        migrations.RemoveField(
            model_name='mcpserver',
            name='oauth_needs_reauth',
        ),
        migrations.RemoveField(
            model_name='mcpserver',
            name='oauth_pkce_methods',
        ),
        migrations.RemoveField(
            model_name='mcpserver',
            name='oauth_redirect_uri',
        ),
        migrations.RemoveField(
            model_name='mcpserver',
            name='oauth_refresh_claimed_at',
        ),
        migrations.RemoveField(
            model_name='mcpserver',
            name='oauth_refresh_token',
        ),
        migrations.RemoveField(
            model_name='mcpserver',
            name='oauth_registration_url',
        ),
        migrations.RemoveField(
            model_name='mcpserver',
            name='oauth_revocation_url',
        ),
        migrations.RemoveField(
            model_name='mcpserver',
            name='oauth_scopes',
        ),
        migrations.RemoveField(
            model_name='mcpserver',
            name='oauth_token_endpoint_auth_method',
        ),
        migrations.RemoveField(
            model_name='mcpserver',
            name='oauth_token_url',
        ),
    ]
