"""`load_demo`: fixtures/demo.json into an empty registry, on any backend.

The fixture numbers its rows (1, 2, 100...) as SQL does; on MongoDB every id is an ObjectId,
which loaddata would refuse, so each numeric id and reference is mapped to this backend's form
first (mcpcontrol.lib.ids.id_for_field: unchanged on SQL)."""

import json
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core import serializers
from django.core.management.base import BaseCommand
from django.db import transaction

from mcpcontrol.lib.ids import id_for_field
from servers.models import McpServer

DEMO = Path(settings.BASE_DIR) / "fixtures" / "demo.json"


def with_backend_ids(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The fixture's objects with primary keys and foreign keys in this backend's id form."""
    for obj in objects:
        model = apps.get_model(obj["model"])
        if "pk" in obj:
            obj["pk"] = id_for_field(model._meta.pk, obj["pk"])
        for name, value in obj["fields"].items():
            field = model._meta.get_field(name)
            if field.many_to_many:
                obj["fields"][name] = [id_for_field(field.target_field, v) for v in value]
            elif field.is_relation:
                obj["fields"][name] = id_for_field(field, value)
    return objects


def demo_load() -> int:
    """Save the demo objects (one transaction where the backend has them); return how many."""
    objects = with_backend_ids(json.loads(DEMO.read_text()))
    with transaction.atomic():
        for obj in serializers.deserialize("python", objects):
            obj.save()
    return len(objects)


class Command(BaseCommand):
    help = "Load fixtures/demo.json into an empty registry (never over an operator's data)."

    def handle(self, *args: Any, **options: Any) -> None:
        if McpServer.objects.exists():
            self.stdout.write("Registry already has servers; demo data not loaded.")
            return
        self.stdout.write(f"Installed {demo_load()} object(s) from {DEMO.name}")
