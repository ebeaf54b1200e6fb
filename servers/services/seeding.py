"""Importing servers from registry files and client configs, and exporting them back.

Registry files are server documents (servers.document), one per file: seed 004's files are
named after their server and carry no server_name; ours carry it, because a file name must
be safe on disk and a server name need not be. A file either becomes a complete row or
nothing; one bad file is reported and never stops the others.
"""

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import transaction

from servers.document import DocumentError, client_entry_document, registry_file
from servers.models import McpServer
from servers.services.documents import (
    server_create_from_document,
    server_document_changes,
    server_document_check,
    server_update_from_document,
)

# An exported file gives every env/header value as "": reading it back keeps what is stored.
KEEP_STORED = ""


@dataclass(frozen=True)
class SeedOutcome:
    source: str
    name: str
    result: str  # created | updated | unchanged | failed
    detail: str = ""


def _existing(name: str, body: dict[str, Any], actor: Any) -> McpServer | None:
    """The server this document names: same name, owner and scope (seed 004's lookup key)."""
    scope = body.get("scope") or McpServer.Scope.SHARED_APP
    if scope == McpServer.Scope.SHARED_APP:
        return McpServer.objects.filter(name=name, owner__isnull=True).first()
    owner = body.get("owner")
    rows = McpServer.objects.filter(name=name, scope=scope)
    rows = rows.filter(owner__username=owner) if owner else rows.filter(owner=actor)
    return rows.first()


def server_seed_one(
    *, name: str, body: dict[str, Any], actor: Any, force: bool, dry_run: bool, source: str
) -> SeedOutcome:
    """Create or (with force) update one server from a document. Raises DocumentError."""
    body = {**body, "server_name": name}
    scoped = (body.get("scope") or McpServer.Scope.SHARED_APP) != McpServer.Scope.SHARED_APP
    if scoped and not body.get("owner") and body.get("user_id") is None:
        body["user_id"] = str(actor.pk)  # seed 004: user-scoped files belong to the seeding admin
    existing = _existing(name, body, actor)
    if existing is None:
        if dry_run:
            server_document_check(body=body, defaults={}, placeholder=KEEP_STORED)
            return SeedOutcome(source, name, "created", "dry run: would create")
        server_create_from_document(actor=actor, body=body, placeholder=KEEP_STORED)
        return SeedOutcome(source, name, "created")
    changes = server_document_changes(server=existing, body=body, placeholder=KEEP_STORED)
    if not changes:
        return SeedOutcome(source, name, "unchanged")
    changed = ", ".join(sorted(changes))
    if not force:
        return SeedOutcome(
            source, name, "unchanged", f"differs in {changed}; use --force to update"
        )
    if dry_run:
        return SeedOutcome(source, name, "updated", f"dry run: would change {changed}")
    server_update_from_document(actor=actor, server=existing, body=body, placeholder=KEEP_STORED)
    return SeedOutcome(source, name, "updated", f"changed {changed}")


def _seed_file(path: Path, *, actor: Any, force: bool, dry_run: bool) -> SeedOutcome:
    name = path.stem
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(body, dict):
            return SeedOutcome(path.name, name, "failed", "(file): must hold a JSON object")
        name = str(body.get("server_name") or body.get("name") or name)
        return server_seed_one(
            name=name, body=body, actor=actor, force=force, dry_run=dry_run, source=path.name
        )
    except json.JSONDecodeError as exc:
        detail = f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        return SeedOutcome(path.name, name, "failed", detail)
    except UnicodeDecodeError:
        return SeedOutcome(path.name, name, "failed", "file is not UTF-8 text")
    except DocumentError as exc:
        return SeedOutcome(path.name, name, "failed", str(exc))


def servers_seed(
    *, directory: Path, actor: Any, force: bool = False, dry_run: bool = False
) -> Iterable[SeedOutcome]:
    """Seed every *.json file of `directory`, in name order, yielding one outcome per file."""
    for path in sorted(directory.glob("*.json")):
        yield _seed_file(path, actor=actor, force=force, dry_run=dry_run)


def _import_entries(
    *, entries: dict[str, Any], actor: Any, force: bool, dry_run: bool, source: str
) -> list[SeedOutcome]:
    outcomes: list[SeedOutcome] = []
    for name, entry in entries.items():
        sid = transaction.savepoint()
        try:
            body = client_entry_document(name, entry)
            outcomes.append(server_seed_one(
                name=name, body=body, actor=actor, force=force, dry_run=dry_run, source=source,
            ))  # fmt: skip
            transaction.savepoint_commit(sid)
        except DocumentError as exc:
            transaction.savepoint_rollback(sid)
            outcomes.append(SeedOutcome(source, name, "failed", str(exc)))
    return outcomes


def servers_import_client_config(
    *, entries: dict[str, Any], actor: Any, force: bool, dry_run: bool, source: str
) -> list[SeedOutcome]:
    """Import a `{"mcpServers": {...}}` client config: all entries or none.

    Every entry is checked first (a dry run), so the report names each failure and nothing
    is written when one fails, on every backend (MongoDB has no transaction to roll back,
    docs/storage.md). The writes then run in one transaction where the backend has them.
    """
    checked = _import_entries(
        entries=entries, actor=actor, force=force, dry_run=True, source=source
    )
    if dry_run or any(o.result == "failed" for o in checked):
        return checked
    with transaction.atomic():
        written = _import_entries(
            entries=entries, actor=actor, force=force, dry_run=False, source=source
        )
        if any(o.result == "failed" for o in written):
            transaction.set_rollback(True)
    return written


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def export_file_name(server: McpServer, taken: set[str]) -> str:
    """A file name for the server that stays inside the export folder and is unique there:
    the name with anything but letters, digits, '.', '_' and '-' replaced, no leading dot,
    and -2, -3... when another server already took it (never the id: an export of the same
    servers in another database must give the same files)."""
    stem = _UNSAFE.sub("_", server.name).strip("._")[:100] or "server"
    name, n = f"{stem}.json", 1
    while name.lower() in taken:
        n += 1
        name = f"{stem}-{n}.json"
    taken.add(name.lower())
    return name


def _export_order(server: McpServer) -> tuple[str, str, str]:
    # (name, owner, scope) is unique: the order, and so the file names, never depend on ids.
    owner = server.owner.get_username() if server.owner is not None else ""
    return (server.name, owner, server.scope)


def servers_export(*, directory: Path, servers: Iterable[McpServer]) -> list[Path]:
    """Write one registry file per server (secrets omitted); returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    root = directory.resolve()
    taken: set[str] = set()
    written = []
    for server in sorted(servers, key=_export_order):
        path = root / export_file_name(server, taken)
        assert path.parent == root  # the name has no separators: it cannot leave the folder
        text = json.dumps(registry_file(server), indent=2, sort_keys=True, default=str)
        path.write_text(text + "\n", encoding="utf-8")
        written.append(path)
    return written
