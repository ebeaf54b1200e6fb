"""django-mongodb-backend, with partial unique indexes for our conditional unique constraints.

The backend refuses `isnull` and negated lookups in index conditions, and our models keep
names, paths, aliases and grants unique per owner with exactly such conditions
(`owner__isnull=False`, `~Q(path="")`). MongoDB's partialFilterExpression can say each of
them: a null or present foreign key is `{"$type": "null"}` / `{"$type": "objectId"}` (the
backend stores null keys as null) and a non-empty string is `{"$gt": ""}`. So the database
keeps the same uniqueness as on SQL (full_clean checks it first on every backend). A
condition this translation does not know fails the migration, naming the constraint.
"""

import contextlib
from typing import Any

from django.db import NotSupportedError
from django.db.models import Q, UniqueConstraint
from django_mongodb_backend.base import DatabaseWrapper as MongoDatabaseWrapper
from django_mongodb_backend.schema import DatabaseSchemaEditor as MongoSchemaEditor
from pymongo.errors import OperationFailure


def partial_filter(model: Any, condition: Q) -> dict[str, Any]:
    """The partialFilterExpression for an AND of simple conditions, or NotSupportedError."""
    if condition.connector != Q.AND or condition.negated:
        raise NotSupportedError(f"cannot express {condition!r} as a partial index")
    out: dict[str, Any] = {}
    children: list[Any] = list(condition.children)
    for child in children:
        if isinstance(child, Q):
            inner: list[Any] = list(child.children)
            if not (child.negated and len(inner) == 1 and isinstance(inner[0], tuple)):
                raise NotSupportedError(f"cannot express {child!r} as a partial index")
            if inner[0][1] != "" or "__" in inner[0][0]:
                raise NotSupportedError(f"cannot express {child!r} as a partial index")
            out[model._meta.get_field(inner[0][0]).column] = {"$gt": ""}
            continue
        key, value = child
        name, _, lookup = key.partition("__")
        field = model._meta.get_field(name)
        if lookup == "isnull" and field.is_relation:
            out[field.column] = {"$type": "null" if value else "objectId"}
        elif lookup in ("", "exact") and isinstance(value, str | bool | int):
            out[field.column] = value
        else:
            raise NotSupportedError(f"cannot express {key}={value!r} as a partial index")
    return out


class DatabaseSchemaEditor(MongoSchemaEditor):  # type: ignore[misc]  # untyped package
    def add_constraint(self, model: Any, constraint: Any, *args: Any, **kwargs: Any) -> None:
        if not (isinstance(constraint, UniqueConstraint) and constraint.condition is not None):
            super().add_constraint(model, constraint, *args, **kwargs)
            return
        embedded = args or kwargs.get("column_prefix") or kwargs.get("parent_model")
        if embedded or constraint.expressions or getattr(constraint, "include", None):
            raise NotSupportedError(f"unique constraint {constraint.name}: not supported")
        columns = [model._meta.get_field(name).column for name in constraint.fields]
        self.get_collection(model._meta.db_table).create_index(
            [(column, 1) for column in columns],
            name=constraint.name,
            unique=True,
            partialFilterExpression=partial_filter(model, constraint.condition),
        )

    def remove_constraint(self, model: Any, constraint: Any) -> None:
        if not (isinstance(constraint, UniqueConstraint) and constraint.condition is not None):
            super().remove_constraint(model, constraint)
            return
        # Absent when the collection was created before the constraint existed.
        with contextlib.suppress(OperationFailure):
            self.get_collection(model._meta.db_table).drop_index(constraint.name)


class DatabaseWrapper(MongoDatabaseWrapper):  # type: ignore[misc]
    SchemaEditorClass = DatabaseSchemaEditor
