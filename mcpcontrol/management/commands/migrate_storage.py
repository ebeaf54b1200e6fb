"""Copy everything from one database to another: `migrate_storage --from <url> --to <url>`.

URLs are DATABASE_URL's (sqlite:///path, postgres://...) or mongodb://...; both are registered
as extra DATABASES aliases for the run. Both must be of one family: SQL (SQLite, PostgreSQL) or
MongoDB; SQL <-> MongoDB is refused with an error saying why (refuse_across_families). Steps:

1. Parse both URLs; refuse a target holding data of ours unless --force (which empties it).
2. Bring the target's schema up to date (`migrate`, in a child process whose database is the
   target), then drop the content types and
   permissions its post_migrate created, so the source's come over with their ids (groups'
   permissions and the admin log point at them).
3. Copy every model of our apps, auth (users, groups, permissions), content types, the admin
   log and Celery beat's schedules, in foreign-key order, in primary key batches, ids kept.
   Encrypted fields are copied as stored (the ciphertext, never decrypted): the target needs
   the same keys, and a value no key opens today is carried over unchanged.
4. Verify: per model, the row count and a SHA-256 of the ordered ids must match; any mismatch
   makes the command exit non-zero naming the models.

--dry-run does step 1 and prints what would be copied; --verify-only does step 4 alone. Run it with the application stopped
(or read-only): rows written during the copy may be missed, which step 4 then reports.
"""

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dj_database_url
from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.management.color import no_style
from django.db import DEFAULT_DB_ALIAS, connections, models, transaction
from django.db.models.functions import Cast

from mcpcontrol.lib.fields import EncryptedJSONField, EncryptedTextField, Sealed

SOURCE, TARGET = "migrate_storage_from", "migrate_storage_to"
APPS = ("contenttypes", "auth", "admin", "django_celery_beat",
        "audit", "servers", "credentials", "tokens")  # fmt: skip
# Created by the target's own migrate (post_migrate): replaced, not counted as "data".
REBUILT = ("contenttypes.contenttype", "auth.permission")


def database_settings(url: str) -> dict[str, Any]:
    """A DATABASES entry for a URL, as settings.py reads DATABASE_URL (MONGO_URI for mongodb)."""
    if url.startswith(("mongodb://", "mongodb+srv://")):
        name = urlsplit(url).path.lstrip("/") or os.environ.get("MONGO_DB_NAME", "mcp_gateway")
        return {"ENGINE": "django_mongodb_backend", "HOST": url, "NAME": name}
    try:
        return dict(dj_database_url.parse(url))
    except ValueError as exc:
        raise CommandError(f"not a database URL ({exc})") from None


def is_mongodb(url: str) -> bool:
    return url.startswith(("mongodb://", "mongodb+srv://"))


def refuse_across_families(source: str, target: str) -> None:
    """SQL <-> MongoDB is refused: this process's models have one id layout (an integer `id`
    column on SQL, an ObjectId `_id` on MongoDB, settings.py decides at start-up), so they
    cannot read one family and write the other, and every reference would need new ids."""
    if is_mongodb(source) != is_mongodb(target):
        raise CommandError(
            "copying between a SQL database and MongoDB is not supported: ids differ in kind "
            "(integers on SQL, ObjectIds on MongoDB). Copy SQLite <-> PostgreSQL, or MongoDB "
            "<-> MongoDB (docs/storage.md)."
        )


def register(alias: str, url: str) -> None:
    configured = connections.configure_settings(
        {DEFAULT_DB_ALIAS: connections.settings[DEFAULT_DB_ALIAS], alias: database_settings(url)}
    )
    connections.settings[alias] = configured[alias]


def migrate_target(url: str) -> None:
    """`migrate` run by a child process whose own database is the target, as the application
    will run there: the data migrations read and write the default database, not an alias."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "MONGO_URI")}
    env["MONGO_URI" if url.startswith(("mongodb://", "mongodb+srv://")) else "DATABASE_URL"] = url
    manage = Path(settings.BASE_DIR) / "manage.py"
    done = subprocess.run([sys.executable, str(manage), "migrate", "--no-input", "-v", "0"],
                          env=env, capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        raise CommandError(f"migrate on the target failed:\n{done.stderr[-2000:]}")


def copied_models() -> list[type[models.Model]]:
    """Concrete models of APPS and their auto-created many-to-many tables, each after the
    models it points at (a cycle is broken arbitrarily: SQL backends check at commit)."""
    found: list[type[models.Model]] = []
    for label in APPS:
        for model in apps.get_app_config(label).get_models(include_auto_created=True):
            if model._meta.managed and not model._meta.proxy:
                found.append(model)
    ordered: list[type[models.Model]] = []
    pending = list(found)
    while pending:
        ready = [m for m in pending if not (_targets(m) & set(pending)) - {m}] or pending[:1]
        ordered += ready
        pending = [m for m in pending if m not in ready]
    return ordered


def _targets(model: type[models.Model]) -> set[type[models.Model]]:
    return {
        f.related_model
        for f in model._meta.concrete_fields
        if f.is_relation and isinstance(f.related_model, type)
    }


def sealed(model: type[models.Model]) -> list[Any]:
    return [
        f
        for f in model._meta.concrete_fields
        if isinstance(f, EncryptedTextField | EncryptedJSONField)
    ]


def rows(model: type[models.Model], alias: str, batch_size: int) -> Iterator[list[dict[str, Any]]]:
    """Rows as field values by attname, in pk batches; encrypted fields as their raw stored
    text (Cast bypasses the field's decryption), wrapped so they are written back as is."""
    secret = {f.attname for f in sealed(model)}
    plain = [f.attname for f in model._meta.concrete_fields if f.attname not in secret]
    raws = {f"raw__{name}": Cast(name, models.TextField()) for name in secret}
    query = model._base_manager.using(alias).order_by("pk")
    last = None
    while True:
        page = query if last is None else query.filter(pk__gt=last)
        batch = list(page.values(*plain, **raws)[:batch_size])
        if not batch:
            return
        for row in batch:
            for name in secret:
                raw = row.pop(f"raw__{name}")
                row[name] = Sealed(raw) if raw else None
        yield batch
        last = batch[-1][model._meta.pk.attname]


@contextmanager
def timestamps_as_given(model: type[models.Model]) -> Iterator[None]:
    """bulk_create would stamp auto_now/auto_now_add fields with the current time; a copy
    keeps the source's. The command is single-threaded, so flipping the flags is safe."""
    flags = ("auto_now", "auto_now_add")
    saved = [(f, flag) for f in model._meta.concrete_fields for flag in flags
             if getattr(f, flag, False)]  # fmt: skip
    for f, flag in saved:
        setattr(f, flag, False)
    try:
        yield
    finally:
        for f, flag in saved:
            setattr(f, flag, True)


def id_digest(model: type[models.Model], alias: str) -> tuple[int, str]:
    digest, count = hashlib.sha256(), 0
    for pk in (
        model._base_manager.using(alias).order_by("pk").values_list("pk", flat=True).iterator()
    ):
        digest.update(f"{pk}\n".encode())
        count += 1
    return count, digest.hexdigest()


def label(model: type[models.Model]) -> str:
    return model._meta.label_lower


class Command(BaseCommand):
    help = "Copy every row of mcpcontrol from one database to another (ids and ciphertexts kept)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--from", dest="source", required=True, help="source database URL")
        parser.add_argument("--to", dest="target", required=True, help="target database URL")
        parser.add_argument("--force", action="store_true",
                            help="empty the target's tables first when it holds data")  # fmt: skip
        parser.add_argument("--dry-run", action="store_true", help="count, copy nothing")
        parser.add_argument("--verify-only", action="store_true",
                            help="only compare source and target (counts and id checksums)")  # fmt: skip
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args: Any, **options: Any) -> None:
        refuse_across_families(options["source"], options["target"])
        register(SOURCE, options["source"])
        register(TARGET, options["target"])
        self.target_url = options["target"]
        try:
            self.run(options)
        finally:
            for alias in (SOURCE, TARGET):
                connections[alias].close()

    def run(self, options: dict[str, Any]) -> None:
        order = copied_models()
        if order[0]._meta.db_table not in connections[SOURCE].introspection.table_names():
            raise CommandError(
                "the source holds no mcpcontrol schema: is --from the right database?"
            )
        if options["verify_only"]:
            self.verify(order)
            return
        occupied = self.occupied(order)
        if occupied and not options["force"]:
            raise CommandError(
                f"the target already holds data ({', '.join(occupied)}): "
                "use --force to empty those tables first"
            )
        if options["dry_run"]:
            for model in order:
                count = model._base_manager.using(SOURCE).count()
                self.stdout.write(f"{label(model)}: {count} (dry run)")
            return
        migrate_target(self.target_url)
        # One transaction where the backend has them: a failed copy leaves the target as it
        # was, and foreign keys (deferred on SQLite and PostgreSQL) are checked at the end.
        with transaction.atomic(using=TARGET):
            self.empty(order, everything=bool(occupied))
            for model in order:
                self.copy(model, options["batch_size"])
        self.reset_sequences(order)
        self.verify(order)

    def occupied(self, order: list[type[models.Model]]) -> list[str]:
        tables = set(connections[TARGET].introspection.table_names())
        return [
            label(model)
            for model in order
            if label(model) not in REBUILT
            and model._meta.db_table in tables
            and model._base_manager.using(TARGET).exists()
        ]

    def empty(self, order: list[type[models.Model]], *, everything: bool) -> None:
        """Drop what the target's migrate created (and with --force, every copied table)."""
        for model in reversed(order):
            if everything or label(model) in REBUILT:
                # Without signals: Celery beat's delete signal would write to the default
                # database. No cascade is needed, every dependent table is emptied first.
                model._base_manager.using(TARGET).all()._raw_delete(TARGET)

    def copy(self, model: type[models.Model], batch_size: int) -> None:
        count = 0
        with timestamps_as_given(model):
            for batch in rows(model, SOURCE, batch_size):
                model._base_manager.using(TARGET).bulk_create(
                    [model(**values) for values in batch], batch_size=batch_size
                )
                count += len(batch)
        self.stdout.write(f"{label(model)}: {count} copied")

    def reset_sequences(self, order: list[type[models.Model]]) -> None:
        """Ids were given explicitly, so a sequence (PostgreSQL) must move past them, as
        loaddata does; SQLite and MongoDB need nothing (Django generates the statements)."""
        statements = connections[TARGET].ops.sequence_reset_sql(no_style(), order)
        if statements:
            with connections[TARGET].cursor() as cursor:
                for statement in statements:
                    cursor.execute(statement)

    def verify(self, order: list[type[models.Model]]) -> None:
        wrong = []
        for model in order:
            source, target = id_digest(model, SOURCE), id_digest(model, TARGET)
            if source != target:
                wrong.append(f"{label(model)} (source {source[0]} rows, target {target[0]})")
        if wrong:
            raise CommandError(f"verification failed: {'; '.join(wrong)}")
        self.stdout.write(
            self.style.SUCCESS(f"verified: {len(order)} models, ids and counts match")
        )
