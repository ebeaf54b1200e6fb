from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand

from servers.models import McpServer


class Command(BaseCommand):
    help = "Load fixtures/demo.json into an empty registry (never over an operator's data)."

    def handle(self, *args: Any, **options: Any) -> None:
        if McpServer.objects.exists():
            self.stdout.write("Registry already has servers; demo data not loaded.")
            return
        call_command("loaddata", "fixtures/demo.json", stdout=self.stdout)
