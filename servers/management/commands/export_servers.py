from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from servers import services
from servers.models import McpServer


class Command(BaseCommand):
    help = "Write every server as a registry JSON file (secrets omitted), for seed_servers."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--out", required=True, type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        servers = McpServer.objects.select_related("owner", "group")
        written = services.servers_export(directory=options["out"], servers=servers)
        self.stdout.write(f"wrote {len(written)} file(s) to {options['out']}")
