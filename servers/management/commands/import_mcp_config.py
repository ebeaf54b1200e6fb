import json
from pathlib import Path
from typing import Any, cast

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from servers import services
from servers.registry_format import FormatError, fields_from_client_config
from servers.services.seeding import describe_validation_error


class Command(BaseCommand):
    help = 'Import servers from a client config file shaped {"mcpServers": {...}}.'

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--admin-user", help="user recorded as creator (default: none)")
        parser.add_argument("--force", action="store_true", help="update existing servers")

    def _load(self, path: Path) -> dict[str, Any]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise CommandError(f"{path}: cannot read ({exc.strerror})") from None
        except json.JSONDecodeError as exc:
            raise CommandError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
        if not isinstance(data, dict) or not isinstance(data.get("mcpServers"), dict):
            raise CommandError(f"{path}: mcpServers: must be an object of servers")
        return cast(dict[str, Any], data["mcpServers"])  # checked just above

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        actor = None
        if options["admin_user"]:
            actor = get_user_model().objects.filter(username=options["admin_user"]).first()
            if actor is None:
                raise CommandError(f"--admin-user: no user named {options['admin_user']!r}")
        failed = 0
        for name, entry in self._load(path).items():
            try:
                outcome = services.server_seed_one(
                    name=name, fields=fields_from_client_config(name, entry), actor=actor,
                    force=options["force"], dry_run=False, source=path.name,
                )  # fmt: skip
                self.stdout.write(
                    f"{path.name}: {name}: {outcome.result} {outcome.detail}".rstrip()
                )
            except (FormatError, ValidationError) as exc:
                failed += 1
                message = (
                    str(exc) if isinstance(exc, FormatError) else describe_validation_error(exc)
                )
                self.stdout.write(self.style.ERROR(f"{path.name}: {name}: failed ({message})"))
        if failed:
            raise CommandError(f"{path}: {failed} server(s) failed; the others were imported")
