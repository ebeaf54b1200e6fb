"""Run health checks from the shell: `manage.py check_servers [--name N ...] [--all]`."""

import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from servers import services
from servers.models import McpServer


class Command(BaseCommand):
    help = "Check MCP servers now (one real MCP session each) and print a table of outcomes."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", action="append", default=[], help="server name (repeatable)")
        parser.add_argument("--all", action="store_true", help="every enabled server")
        parser.add_argument(
            "--concurrency", type=int, default=settings.MCPCONTROL_HEALTH_CONCURRENCY
        )

    def _server_ids(self, options: dict[str, Any]) -> list[int]:
        if options["all"] == bool(options["name"]):
            raise CommandError("Give either --all or one or more --name.")
        if options["all"]:
            return list(McpServer.objects.enabled().order_by("id").values_list("id", flat=True))
        found = dict(McpServer.objects.filter(name__in=options["name"]).values_list("name", "id"))
        missing = sorted(set(options["name"]) - set(found))
        if missing:
            raise CommandError(f"No server named: {', '.join(missing)}")
        return list(found.values())

    def _progress(self, done: int, total: int) -> None:
        if sys.stderr.isatty() or done == total or done % 25 == 0:
            self.stderr.write(f"\rchecked {done}/{total}", ending="")
            self.stderr.flush()

    def handle(self, *args: Any, **options: Any) -> None:
        ids = self._server_ids(options)
        checks = services.servers_check(
            server_ids=ids, concurrency=options["concurrency"], progress=self._progress
        )
        self.stderr.write("")
        rows = [("SERVER", "OUTCOME", "MS", "TOOLS", "STATUS", "MESSAGE")]
        for c in sorted(checks, key=lambda c: c.name):
            tools = "" if c.tool_count is None else str(c.tool_count)
            ms = "" if c.response_time_ms is None else str(c.response_time_ms)
            rows.append((c.name, c.outcome, ms, tools, c.status, c.message[:80]))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        for row in rows:
            cells = [cell.ljust(width) for cell, width in zip(row[:5], widths, strict=True)]
            self.stdout.write("  ".join([*cells, row[5]]).rstrip())
        skipped = len(ids) - len(checks)
        if skipped:
            self.stdout.write(f"{skipped} server(s) skipped: already being checked elsewhere.")
