"""Run health checks from the shell: `manage.py check_servers [--name N ...] [--all]`.

Prints one row per server asked for, and exits 1 when any row's outcome is one of
`--fail-on` (default: anything but healthy or disabled), so a script or a cron job notices.
A server another check holds at that moment is not checked twice: its row says "skipped",
which fails by default too, since nobody confirmed it healthy.
"""

import argparse
import sys
from collections import Counter
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from servers import services
from servers.mcp_client import Outcome
from servers.models import McpServer, words

SKIPPED = "skipped"
OUTCOMES = [str(o) for o in Outcome] + [SKIPPED]
PASSING = {str(Outcome.HEALTHY), str(Outcome.DISABLED)}


def fail_on(value: str) -> set[str]:
    """--fail-on's value: comma-separated outcomes, or "none"."""
    if value.strip() == "none":
        return set()
    names = {name.strip() for name in value.split(",") if name.strip()}
    unknown = sorted(names - set(OUTCOMES))
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown outcome {', '.join(unknown) or repr(value)}; "
            f"use 'none' or some of: {', '.join(OUTCOMES)}"
        )
    return names


@dataclass(frozen=True)
class Row:
    name: str
    outcome: str
    ms: str = ""
    tools: str = ""
    status: str = ""
    state: str = ""
    message: str = ""


class Command(BaseCommand):
    help = (
        "Check MCP servers now (one real MCP session each), print a table of outcomes, and "
        "exit 1 if any outcome is one of --fail-on."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", action="append", default=[], help="server name (repeatable)")
        parser.add_argument("--all", action="store_true", help="every enabled server")
        parser.add_argument(
            "--concurrency", type=int, default=settings.MCPCONTROL_HEALTH_CONCURRENCY
        )
        parser.add_argument(
            "--fail-on", type=fail_on, default=set(OUTCOMES) - PASSING, metavar="OUTCOMES",
            help=f"comma-separated outcomes that make the command exit 1, or 'none' "
            f"(of: {', '.join(OUTCOMES)}; default: all but healthy and disabled)",
        )  # fmt: skip

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
        servers = McpServer.objects.in_bulk(ids)
        rows = [self._row(c, servers[c.server_id]) for c in checks if c.server_id in servers]
        rows += self._skipped_rows(set(ids) - {c.server_id for c in checks})
        self._print(sorted(rows, key=lambda r: r.name))
        failed = Counter(r.outcome for r in rows if r.outcome in options["fail_on"])
        if failed:
            counts = ", ".join(f"{outcome} {n}" for outcome, n in sorted(failed.items()))
            raise CommandError(
                f"{failed.total()} of {len(rows)} server(s) failed ({counts})", returncode=1
            )

    def _row(self, check: services.CheckResult, server: McpServer) -> Row:
        """The check as found, the server's state after it, the failure in plain words."""
        message = check.message
        if check.outcome not in PASSING:
            where = words.where(
                transport=server.transport_type, url=server.url, command=server.command
            )
            message = words.plain_error(where=where, outcome=check.outcome, message=message)
        return Row(
            name=check.name, outcome=check.outcome, status=check.status,
            state=server.State(server.state).label, message=message[:100],
            ms="" if check.response_time_ms is None else str(check.response_time_ms),
            tools="" if check.tool_count is None else str(check.tool_count),
        )  # fmt: skip

    def _skipped_rows(self, ids: set[int]) -> list[Row]:
        """Servers another check (a worker's sweep) held: not checked here, not hidden."""
        message = "being checked elsewhere right now; try again shortly"
        servers = McpServer.objects.filter(id__in=ids)
        return [
            Row(name=s.name, outcome=SKIPPED, status=s.status, state=s.State(s.state).label,
                message=message)
            for s in servers
        ]  # fmt: skip

    def _print(self, rows: list[Row]) -> None:
        table = [("SERVER", "OUTCOME", "MS", "TOOLS", "STATUS", "STATE", "MESSAGE")]
        table += [(r.name, r.outcome, r.ms, r.tools, r.status, r.state, r.message) for r in rows]
        widths = [max(len(line[i]) for line in table) for i in range(6)]
        for line in table:
            cells = [cell.ljust(width) for cell, width in zip(line[:6], widths, strict=True)]
            self.stdout.write("  ".join([*cells, line[6]]).rstrip())
