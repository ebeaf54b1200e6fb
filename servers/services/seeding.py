"""Importing servers from registry files and client configs, and exporting them back.

Each file is handled on its own: one bad file is reported and never stops the others, and a
file either becomes a complete row or nothing (the register/update services are atomic).
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError

from mcpcontrol.lib.fields import Sealed
from servers.models import McpServer, default_alias
from servers.registry_format import FormatError, fields_from_registry, registry_from_server
from servers.services.registry import server_register, server_update

# The health engine owns status once a server exists; a file only sets it at creation.
_CREATE_ONLY_FIELDS = frozenset({"status"})


@dataclass(frozen=True)
class SeedOutcome:
    source: str
    name: str
    result: str  # created | updated | unchanged | failed
    detail: str = ""


def describe_validation_error(error: ValidationError) -> str:
    if hasattr(error, "message_dict"):
        return "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in error.message_dict.items())
    return " ".join(error.messages)


def _differences(server: McpServer, fields: dict[str, Any]) -> dict[str, Any]:
    changes = {}
    for name, value in fields.items():
        if name in _CREATE_ONLY_FIELDS:
            continue
        current = getattr(server, name)
        if isinstance(current, Sealed):
            current = current.reveal()
        if current != value:
            changes[name] = value
    return changes


def _keeping_stored_values(server: McpServer, fields: dict[str, Any]) -> dict[str, Any]:
    """`fields` where an env or header value of "" keeps the stored one: an exported file
    gives every such value as "", and seeding it back must not wipe the secrets."""
    return {
        name: server.with_stored_values(name, value, placeholder="")
        if name in McpServer.SECRET_MAP_FIELDS and isinstance(value, dict)
        else value
        for name, value in fields.items()
    }


def server_seed_one(
    *, name: str, fields: dict[str, Any], actor: Any, force: bool, dry_run: bool, source: str
) -> SeedOutcome:
    """Create or (with force) update one server from file field values."""
    if fields.get("scope", McpServer.Scope.SHARED_APP) != McpServer.Scope.SHARED_APP:
        fields.setdefault("owner", actor)
    existing = McpServer.objects.filter(name=name).first()
    if existing is None:
        if dry_run:
            alias = fields.get("alias") or default_alias(name)
            McpServer(**{"alias": alias, "path": "/" + alias, **fields}).full_clean()
            return SeedOutcome(source, name, "created", "dry run: would create")
        server_register(actor=actor, **fields)
        return SeedOutcome(source, name, "created")
    changes = _differences(existing, _keeping_stored_values(existing, fields))
    if not changes:
        return SeedOutcome(source, name, "unchanged")
    changed = ", ".join(sorted(changes))
    if not force:
        return SeedOutcome(
            source, name, "unchanged", f"differs in {changed}; use --force to update"
        )
    if dry_run:
        return SeedOutcome(source, name, "updated", f"dry run: would change {changed}")
    server_update(actor=actor, server=existing, changes=changes)
    return SeedOutcome(source, name, "updated", f"changed {changed}")


def _seed_file(path: Path, *, actor: Any, force: bool, dry_run: bool) -> SeedOutcome:
    name = path.stem
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        fields = fields_from_registry(name, data)
        return server_seed_one(
            name=name, fields=fields, actor=actor, force=force, dry_run=dry_run, source=path.name
        )
    except json.JSONDecodeError as exc:
        return SeedOutcome(
            path.name,
            name,
            "failed",
            f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
        )
    except UnicodeDecodeError:
        return SeedOutcome(path.name, name, "failed", "file is not UTF-8 text")
    except FormatError as exc:
        return SeedOutcome(path.name, name, "failed", str(exc))
    except ValidationError as exc:
        return SeedOutcome(path.name, name, "failed", describe_validation_error(exc))


def servers_seed(
    *, directory: Path, actor: Any, force: bool = False, dry_run: bool = False
) -> Iterable[SeedOutcome]:
    """Seed every *.json file of `directory`, in name order, yielding one outcome per file."""
    for path in sorted(directory.glob("*.json")):
        yield _seed_file(path, actor=actor, force=force, dry_run=dry_run)


def servers_export(*, directory: Path, servers: Iterable[McpServer]) -> list[Path]:
    """Write one registry file per server (secrets omitted); returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for server in servers:
        path = directory / f"{server.name}.json"
        path.write_text(json.dumps(registry_from_server(server), indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written
