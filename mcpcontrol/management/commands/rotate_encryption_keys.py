"""Re-encrypt every sealed value under the newest MCPCONTROL_ENCRYPTION_KEYS key, online.

Every EncryptedTextField and EncryptedJSONField of every installed model is read in primary
key batches, and each value that the newest key alone cannot decrypt is rewritten with a
conditional UPDATE on the ciphertext it was read with: a value written meanwhile (already
under the newest key) wins and is left alone. Readers never notice, since every configured
key decrypts, so the server keeps serving. A value already under the newest key is skipped,
so an interrupted run is simply run again. The run ends by checking that every stored value
decrypts with the newest key alone, and exits non-zero naming what does not.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import models, transaction
from django.db.models.functions import Cast

from mcpcontrol.lib import crypto
from mcpcontrol.lib.fields import EncryptedJSONField, EncryptedTextField, Sealed

Row = tuple[Any, ...]  # (pk, ciphertext of each sealed field or None)
MAX_IDS_SHOWN = 10


def sealed_fields(model: type[models.Model]) -> list[str]:
    return [
        f.name
        for f in model._meta.concrete_fields
        if isinstance(f, EncryptedJSONField)
        or (isinstance(f, EncryptedTextField) and f.rotates_with_encryption_keys())
    ]


def sealed_models() -> list[type[models.Model]]:
    """Every installed model with an encrypted field, whichever app defines it."""
    return [model for model in apps.get_models() if sealed_fields(model)]


def stored_rows(model: type[models.Model], batch_size: int) -> Iterator[list[Row]]:
    """Every row's ciphertexts, in primary key order, one short query per batch (no cursor
    held open across a long run). The fields decrypt on load, hence the Cast to text."""
    raws = {f"raw_{name}": Cast(name, models.TextField()) for name in sealed_fields(model)}
    rows = model._default_manager.annotate(**raws).order_by("pk")
    last = None
    while True:
        page = rows if last is None else rows.filter(pk__gt=last)
        batch = list(page.values_list("pk", *raws)[:batch_size])
        if not batch:
            return
        yield batch
        last = batch[-1][0]


def rotate_value(model: type[models.Model], name: str, pk: Any, ciphertext: str) -> bool:
    """Re-encrypt one value under the newest key, unless it changed since it was read: the
    UPDATE is conditional on the old ciphertext, so a concurrent write is never undone."""
    rotated = crypto.rotate(ciphertext)
    same = model._default_manager.filter(pk=pk, **{name: Sealed(ciphertext)})
    return same.update(**{name: Sealed(rotated)}) == 1


@dataclass
class Tally:
    """What one model's pass found; unreadable maps a field to the ids no key can read."""

    values: int = 0
    rotated: int = 0
    current: int = 0
    changed_meanwhile: int = 0
    unreadable: dict[str, list[Any]] = field(default_factory=dict)


def _label(model: type[models.Model]) -> str:
    return f"{model._meta.app_label}.{model.__name__}"


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored secret under the newest MCPCONTROL_ENCRYPTION_KEYS key, in "
        "batches, while the server serves; safe to interrupt and run again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=500, help="rows per transaction")
        parser.add_argument("--dry-run", action="store_true", help="count, write nothing")

    def handle(self, *args: Any, batch_size: int, dry_run: bool, **options: Any) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        self.verbosity = int(options.get("verbosity", 1))
        for model in sealed_models():
            tally = self._pass(model, batch_size, dry_run=dry_run)
            self.stdout.write(self._report(model, tally, dry_run=dry_run))
        if dry_run:
            self.stdout.write("dry run: nothing was written")
            return
        self._verify(batch_size)

    def _pass(self, model: type[models.Model], batch_size: int, *, dry_run: bool) -> Tally:
        """One model, batch by batch: each batch is one short transaction, committed before
        the next is read, so an interruption loses at most the batch in flight."""
        names, tally = sealed_fields(model), Tally()
        for batch in stored_rows(model, batch_size):
            with transaction.atomic():
                for pk, *ciphertexts in batch:
                    for name, ciphertext in zip(names, ciphertexts, strict=True):
                        if ciphertext:
                            self._one(model, name, pk, ciphertext, tally, dry_run=dry_run)
            if self.verbosity >= 2:
                self.stdout.write(f"{_label(model)}: {tally.values} values checked")
        return tally

    def _one(
        self, model: type[models.Model], name: str, pk: Any, ciphertext: str, tally: Tally,
        *, dry_run: bool,
    ) -> None:  # fmt: skip
        tally.values += 1
        if crypto.is_current(ciphertext):
            tally.current += 1
            return
        try:
            if dry_run:
                crypto.decrypt(ciphertext)  # counted as "would change" only if it can
                changed = True
            else:
                changed = rotate_value(model, name, pk, ciphertext)
        except crypto.DecryptionError:
            tally.unreadable.setdefault(name, []).append(pk)  # reported, never a crash
            return
        if changed:
            tally.rotated += 1
        else:
            tally.changed_meanwhile += 1

    def _report(self, model: type[models.Model], tally: Tally, *, dry_run: bool) -> str:
        verb = "would be re-encrypted" if dry_run else "re-encrypted"
        line = (
            f"{_label(model)}: {tally.values} values, {tally.rotated} {verb}, "
            f"{tally.current} already current"
        )
        if tally.changed_meanwhile:
            line += f", {tally.changed_meanwhile} changed meanwhile (kept)"
        for name, ids in tally.unreadable.items():
            shown = ", ".join(str(pk) for pk in ids[:MAX_IDS_SHOWN])
            line += f"\n  {name}: {len(ids)} unreadable with every configured key (ids {shown})"
        return line

    def _verify(self, batch_size: int) -> None:
        """The last step: every stored value decrypts with the newest key alone, else exit
        non-zero naming model, field and count, so the old key is not dropped too early."""
        stale: dict[str, int] = {}
        for model in sealed_models():
            names = sealed_fields(model)
            for batch in stored_rows(model, batch_size):
                for _pk, *ciphertexts in batch:
                    for name, ciphertext in zip(names, ciphertexts, strict=True):
                        if ciphertext and not crypto.is_current(ciphertext):
                            key = f"{_label(model)}.{name}"
                            stale[key] = stale.get(key, 0) + 1
        if stale:
            found = ", ".join(f"{key}: {count}" for key, count in stale.items())
            raise CommandError(
                f"not every stored secret decrypts with the newest key alone ({found}); "
                "keep the old keys: run again, or restore the key that wrote them"
            )
        self.stdout.write("verified: every stored secret decrypts with the newest key alone")
