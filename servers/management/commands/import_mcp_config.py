import json
from pathlib import Path
from typing import Any, cast

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from servers import services


class Command(BaseCommand):
    help = (
        'Import servers from a client config file shaped {"mcpServers": {...}}: all of them '
        "or, if any entry fails, none."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--admin-user", help="user recorded as creator (default: none)")
        parser.add_argument("--force", action="store_true", help="update existing servers")
        parser.add_argument("--dry-run", action="store_true", help="only print what would change")

    def _load(self, path: Path) -> dict[str, Any]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise CommandError(f"{path}: cannot read ({exc.strerror})") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CommandError(f"{path}: invalid JSON: {exc}") from None
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
        outcomes = services.servers_import_client_config(
            entries=self._load(path), actor=actor, force=options["force"],
            dry_run=options["dry_run"], source=path.name,
        )  # fmt: skip
        for outcome in outcomes:
            line = f"{path.name}: {outcome.name}: {outcome.result}"
            line += f" ({outcome.detail})" if outcome.detail else ""
            self.stdout.write(self.style.ERROR(line) if outcome.result == "failed" else line)
        failed = sum(o.result == "failed" for o in outcomes)
        if failed:
            raise CommandError(f"{path}: {failed} server(s) failed; nothing was imported")
        if options["dry_run"]:
            self.stdout.write("dry run: nothing written")
