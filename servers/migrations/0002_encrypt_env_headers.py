# env and headers values are secrets: move them from JSON columns to Fernet ciphertext.
#
# The columns first become plain text, so the data step reads and writes the raw JSON
# document through an ordinary TextField (no raw SQL, any backend); only then does the field
# become EncryptedJSONField, which decrypts on load. The reverse runs the same steps back.

import json

from django.db import migrations, models

import mcpcontrol.lib.fields
from mcpcontrol.lib import crypto

FIELDS = ("env", "headers")


def _rewrite(apps, schema_editor, convert):
    McpServer = apps.get_model("servers", "McpServer")
    rows = McpServer.objects.using(schema_editor.connection.alias).only("pk", *FIELDS)
    for row in rows.iterator():
        values = {name: convert(getattr(row, name)) for name in FIELDS}
        McpServer.objects.using(schema_editor.connection.alias).filter(pk=row.pk).update(**values)


def encrypt_values(apps, schema_editor):
    # Re-dumping validates the document: a row that is not JSON fails here, not at read time.
    _rewrite(apps, schema_editor, lambda raw: crypto.encrypt(json.dumps(json.loads(raw or "{}"))))


def decrypt_values(apps, schema_editor):
    _rewrite(apps, schema_editor, lambda ciphertext: crypto.decrypt(ciphertext))


def _as_text(name):
    return migrations.AlterField(
        model_name="mcpserver", name=name, field=models.TextField(blank=True, default="{}")
    )


class Migration(migrations.Migration):
    dependencies = [
        ("servers", "0001_initial"),
    ]

    operations = [
        _as_text("env"),
        _as_text("headers"),
        migrations.RunPython(encrypt_values, decrypt_values),
        migrations.AlterField(
            model_name="mcpserver",
            name="env",
            field=mcpcontrol.lib.fields.EncryptedJSONField(blank=True, default=dict, editable=False),
        ),
        migrations.AlterField(
            model_name="mcpserver",
            name="headers",
            field=mcpcontrol.lib.fields.EncryptedJSONField(blank=True, default=dict, editable=False),
        ),
    ]
