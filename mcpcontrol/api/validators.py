"""Field validators shared by the API serializers."""

from typing import Any

from rest_framework import serializers


def reject_nul(value: Any) -> None:
    """PostgreSQL cannot store NUL in text or jsonb: reject it as a 400 instead of a 500."""
    if isinstance(value, str) and "\x00" in value:
        raise serializers.ValidationError("Null characters are not allowed.")
    if isinstance(value, dict):
        for key, item in value.items():
            reject_nul(key)
            reject_nul(item)
    elif isinstance(value, list):
        for item in value:
            reject_nul(item)
