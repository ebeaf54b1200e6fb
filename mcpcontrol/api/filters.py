"""Filter classes shared by the API filtersets."""

from datetime import UTC, datetime
from typing import Any

from django import forms
from django.core.validators import RegexValidator
from django_filters import rest_framework as filters
from django_filters.fields import IsoDateTimeField

from mcpcontrol.lib.ids import ID_PATTERN


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time, converted to UTC before it reaches the database.

    Python accepts offsets up to ±24 h, PostgreSQL only up to ±16 h: an offset like +23:18
    is valid input that the database would refuse with a 500. In UTC it is an ordinary value.
    """

    def to_python(self, value: Any) -> datetime | None:
        parsed = super().to_python(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError("Date-time is out of range.", code="invalid") from None


class UtcIsoDateTimeFilter(filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class IdFilter(filters.CharFilter):
    """An id of this backend: a decimal number on SQL, an ObjectId on MongoDB
    (mcpcontrol.lib.ids); any other form is a 400, never a query."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("validators", [RegexValidator(rf"^{ID_PATTERN}$", "Not a valid id.")])
        super().__init__(*args, **kwargs)
