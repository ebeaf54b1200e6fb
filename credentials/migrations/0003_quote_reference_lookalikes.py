"""Stored credential values that would now read as secret references get "literal:" in front.

Before secret references (mcpcontrol.lib.secret_refs) every stored value was meant as it is.
A value such as "file:/data/app.db" in a stdio server's env would now be read as a file
reference; the escape keeps its meaning exactly. OAuth grants are never dereferenced, so
they are left alone; values no configured key can decrypt are left as they are.
"""

from collections.abc import Callable
from typing import Any

from django.db import migrations

from mcpcontrol.lib.crypto import DecryptionError
from mcpcontrol.lib.secret_refs import LITERAL, quote


def _unquote(value: str) -> str:
    return value.removeprefix(LITERAL)


def _sealed(sealed: Any, change: Callable[[str], str]) -> str | None:
    """The changed plaintext of an EncryptedTextField value, or None when it stays."""
    if sealed is None:
        return None
    try:
        plain = sealed.reveal()
    except DecryptionError:
        return None
    changed = change(plain)
    return changed if changed != plain else None


def _rewrite(apps: Any, db: str, change: Callable[[str], str]) -> None:
    McpServer = apps.get_model("servers", "McpServer")
    for server in McpServer.objects.using(db).iterator():
        fields = []
        for field in ("env", "headers"):
            values = getattr(server, field)
            if isinstance(values, dict):  # not Unreadable
                changed = {k: change(v) if isinstance(v, str) else v for k, v in values.items()}
                if changed != values:
                    setattr(server, field, changed)
                    fields.append(field)
        if (secret := _sealed(server.oauth_client_secret, change)) is not None:
            server.oauth_client_secret = secret
            fields.append("oauth_client_secret")
        if fields:
            server.save(update_fields=fields)
    grants = apps.get_model("credentials", "Grant").objects.using(db).exclude(kind="oauth")
    values = apps.get_model("credentials", "VariableValue").objects.using(db).all()
    for rows, field in ((grants, "secret"), (values, "value")):
        for row in rows.iterator():
            if (secret := _sealed(getattr(row, field), change)) is not None:
                setattr(row, field, secret)
                row.save(update_fields=[field])


def quote_lookalikes(apps: Any, schema_editor: Any) -> None:
    _rewrite(apps, schema_editor.connection.alias, quote)


def unquote(apps: Any, schema_editor: Any) -> None:
    _rewrite(apps, schema_editor.connection.alias, _unquote)  # the code before this knew no references and no escape


class Migration(migrations.Migration):
    dependencies = [
        ("credentials", "0002_move_grants"),
        ("servers", "0004_drop_grant_columns"),
    ]

    operations = [migrations.RunPython(quote_lookalikes, unquote)]
