"""Primary keys that suit the storage backend (docs/storage.md).

On SQL backends PortableAutoField is a BigAutoField, the same column as before; with MONGO_URI
set (settings.py decides) it is django-mongodb-backend's ObjectIdAutoField. Our migrations name
this class rather than either, so one set of migrations serves every backend. The API shows
every id as a string either way; ID_PATTERN is this backend's form in URLs.
"""

import re
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.urls import register_converter

# The ids of this backend in URLs and id fields: decimal numbers on SQL (as always), 24 hex
# digits (an ObjectId) on MongoDB. Anything else never reaches a query: a 404 or a 400.
ID_PATTERN = r"[0-9a-f]{24}" if settings.MONGO_URI else r"\d{1,18}"


def is_id(value: str) -> bool:
    """Whether value has the form of an id on this backend (not whether the row exists)."""
    return re.fullmatch(ID_PATTERN, value) is not None


def id_for_field(field: Any, value: Any) -> Any:
    """A numeric id (a fixture's, a SQL database's) in the form `field` stores: unchanged where
    the field takes numbers (SQL), else the ObjectId whose 24 hex digits are the number
    zero-padded (42 -> "00000000000000000000002a"). The same number always gives the same
    ObjectId, so a row and every reference to it still agree after the mapping. `field` is a
    primary key or a foreign key (whose to_python is its target's)."""
    if not isinstance(value, int) or isinstance(value, bool):
        return value
    try:
        field.to_python(value)
    except ValidationError:
        return f"{value:024x}"
    return value


def _base() -> type[Any]:
    if settings.MONGO_URI:
        from django_mongodb_backend.fields import ObjectIdAutoField

        return ObjectIdAutoField  # type: ignore[no-any-return]
    return models.BigAutoField


def _deconstruct(field: Any, deconstructed: Any) -> Any:
    name, _path, args, kwargs = deconstructed
    return name, "mcpcontrol.lib.ids.PortableAutoField", args, kwargs


if TYPE_CHECKING:  # what the type checker (and its Django plugin) should see: SQL's field

    class PortableAutoField(models.BigAutoField):  # type: ignore[type-arg]
        def deconstruct(self) -> Any:
            return _deconstruct(self, super().deconstruct())

else:

    class PortableAutoField(_base()):
        def deconstruct(self):
            return _deconstruct(self, super().deconstruct())


class IdConverter:
    """`<id:pk>` in URL patterns: ID_PATTERN, passed on as a string."""

    regex = ID_PATTERN

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: Any) -> str:
        return str(value)


register_converter(IdConverter, "id")
