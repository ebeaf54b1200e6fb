from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from servers import services


class Command(BaseCommand):
    help = "Import a directory of per-server registry JSON files (file name = server name)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--servers-dir", required=True, type=Path)
        parser.add_argument("--admin-user", required=True, help="user recorded as creator/owner")
        parser.add_argument("--force", action="store_true", help="update existing servers")
        parser.add_argument("--dry-run", action="store_true", help="only print what would change")

    def handle(self, *args: Any, **options: Any) -> None:
        directory: Path = options["servers_dir"]
        if not directory.is_dir():
            raise CommandError(f"--servers-dir: {directory} is not a directory")
        user = get_user_model().objects.filter(username=options["admin_user"]).first()
        if user is None:
            raise CommandError(f"--admin-user: no user named {options['admin_user']!r}")
        counts = {"created": 0, "updated": 0, "unchanged": 0, "failed": 0}
        outcomes = services.servers_seed(
            directory=directory, actor=user, force=options["force"], dry_run=options["dry_run"]
        )
        for outcome in outcomes:
            counts[outcome.result] += 1
            detail = f" ({outcome.detail})" if outcome.detail else ""
            line = f"{outcome.source}: {outcome.result}{detail}"
            self.stdout.write(self.style.ERROR(line) if outcome.result == "failed" else line)
        prefix = "dry run, nothing written: " if options["dry_run"] else ""
        self.stdout.write(prefix + ", ".join(f"{n} {k}" for k, n in counts.items()))
        if counts["failed"]:
            raise CommandError(f"{counts['failed']} file(s) failed; the others were imported")
