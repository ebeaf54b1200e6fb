from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from mcpcontrol.lib import crypto
from mcpcontrol.lib.fields import EncryptedTextField, Sealed
from servers.models import AgentConnection, McpServer
from tokens.models import Token


class Command(BaseCommand):
    help = "Re-encrypt every stored secret under the newest MCPCONTROL_ENCRYPTION_KEYS key."

    def handle(self, *args: Any, **options: Any) -> None:
        total = 0
        for model in (McpServer, AgentConnection, Token):
            fields = [
                f.name for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)
            ]
            for row in model.objects.only("pk", *fields).iterator():
                values = {
                    name: Sealed(crypto.rotate(getattr(row, name).ciphertext))
                    for name in fields
                    if getattr(row, name) is not None
                }
                if values:
                    with transaction.atomic():
                        model.objects.filter(pk=row.pk).update(**values)
                    total += len(values)
        self.stdout.write(f"re-encrypted {total} secret(s) under the newest key")
