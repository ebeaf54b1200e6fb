from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import models, transaction
from django.db.models.functions import Cast

from mcpcontrol.lib import crypto
from mcpcontrol.lib.fields import EncryptedJSONField, EncryptedTextField, Sealed


def _sealed_models() -> list[type[models.Model]]:
    """Every installed model with an encrypted field, whichever app defines it."""
    return [
        model
        for model in apps.get_models()
        if any(isinstance(f, EncryptedTextField | EncryptedJSONField)
               for f in model._meta.concrete_fields)
    ]  # fmt: skip


def _rotate_json_fields(model: type[models.Model]) -> int:
    """Re-encrypt every EncryptedJSONField of `model`; returns how many values changed.

    The field decrypts on load, so the ciphertext is read through a Cast to text. The write is
    conditional on that ciphertext: a value edited meanwhile is already under the newest key
    and is kept, never overwritten with the older document.
    """
    fields = [f.name for f in model._meta.concrete_fields if isinstance(f, EncryptedJSONField)]
    total = 0
    for name in fields:
        raw = Cast(name, models.TextField())
        # _default_manager is `objects` on each model passed here.
        for pk, ciphertext in (
            model._default_manager.annotate(raw=raw).values_list("pk", "raw").iterator()
        ):
            if not ciphertext:
                continue
            rotated = crypto.rotate(ciphertext)
            total += (
                model._default_manager.alias(raw=raw)
                .filter(pk=pk, raw=ciphertext)
                .update(**{name: Sealed(rotated)})
            )
    return total


class Command(BaseCommand):
    help = "Re-encrypt every stored secret under the newest MCPCONTROL_ENCRYPTION_KEYS key."

    def handle(self, *args: Any, **options: Any) -> None:
        total = 0
        for model in _sealed_models():
            fields = [
                f.name for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)
            ]
            for row in model._default_manager.only("pk", *fields).iterator():
                values = {
                    name: Sealed(crypto.rotate(getattr(row, name).ciphertext))
                    for name in fields
                    if getattr(row, name) is not None
                }
                if values:
                    with transaction.atomic():
                        model._default_manager.filter(pk=row.pk).update(**values)
                    total += len(values)
            total += _rotate_json_fields(model)
        self.stdout.write(f"re-encrypted {total} secret(s) under the newest key")
