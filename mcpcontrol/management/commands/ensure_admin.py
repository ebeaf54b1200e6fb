import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = (
        "Create the admin user if missing. The password comes from MCPCONTROL_ADMIN_PASSWORD "
        "(or the file named by MCPCONTROL_ADMIN_PASSWORD_FILE), or is generated and printed once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default=settings.MCPCONTROL_ADMIN_USER)

    def handle(self, *args: Any, **options: Any) -> None:
        users = get_user_model().objects
        username = options["username"]
        if users.filter(username=username).exists():
            self.stdout.write(f"Admin user {username!r} exists; password unchanged.")
            return
        password = settings.MCPCONTROL_ADMIN_PASSWORD or secrets.token_urlsafe(12)
        users.create_superuser(username=username, email="", password=password)
        if settings.MCPCONTROL_ADMIN_PASSWORD:
            self.stdout.write(f"Created admin user {username!r} with MCPCONTROL_ADMIN_PASSWORD.")
        else:
            # Printed once, on purpose: it is the operator's only way to learn it.
            self.stdout.write(f"Created admin user {username!r} with password: {password}")
            self.stdout.write("It is shown only this once; change it in the console.")
