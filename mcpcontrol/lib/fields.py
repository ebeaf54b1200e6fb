"""Encrypted model fields: EncryptedTextField for one secret, EncryptedJSONField for a map.

EncryptedTextField's value never exists in plain text on the instance. Assigning a str
encrypts it at once (the attribute then holds a `Sealed`), the database column holds Fernet
ciphertext, and reading the secret back is an explicit `.reveal()` call. So a secret cannot
leak through repr(), model_to_dict(), a serializer or the admin by accident.
"""

import json
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import models

from mcpcontrol.lib import crypto


class Sealed:
    """An encrypted secret. str()/repr() never show it; reveal() decrypts or raises."""

    __slots__ = ("ciphertext",)

    def __init__(self, ciphertext: str) -> None:
        self.ciphertext = ciphertext

    @classmethod
    def seal(cls, plaintext: str) -> "Sealed":
        return cls(crypto.encrypt(plaintext))

    def reveal(self) -> str:
        return crypto.decrypt(self.ciphertext)

    def __repr__(self) -> str:
        return "<Sealed secret>"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sealed) and other.ciphertext == self.ciphertext

    def __hash__(self) -> int:
        return hash(self.ciphertext)


def reveal(value: "Sealed | None") -> str:
    """The plaintext of a sealed value, or "" when no secret is stored."""
    return value.reveal() if value is not None else ""


if TYPE_CHECKING:
    # Field[set type, get type]: django-stubs types the model attributes from these. Django's
    # own Field is not subscriptable at run time, hence the split.
    _SealedTextField = models.TextField[str | Sealed | None, Sealed | None]
    _JSONTextField = models.TextField[Any, Any]
else:
    _SealedTextField = _JSONTextField = models.TextField


class _SealingDescriptor:
    def __init__(self, field: "EncryptedTextField") -> None:
        self.field = field

    def __get__(self, instance: Any, owner: Any) -> Any:
        if instance is None:
            return self
        return instance.__dict__.get(self.field.attname)

    def __set__(self, instance: Any, value: Any) -> None:
        instance.__dict__[self.field.attname] = self.field.to_python(value)


class EncryptedTextField(_SealedTextField):
    """Stores Fernet ciphertext; the Python value is a Sealed or None (empty)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("null", True)
        kwargs.setdefault("blank", True)
        kwargs.setdefault("default", None)
        kwargs.setdefault("editable", False)  # forms use explicit write-only inputs instead
        super().__init__(*args, **kwargs)

    def contribute_to_class(self, cls: Any, name: str, *args: Any, **kwargs: Any) -> None:
        super().contribute_to_class(cls, name, *args, **kwargs)
        setattr(cls, self.attname, _SealingDescriptor(self))

    def to_python(self, value: Any) -> Sealed | None:
        if value is None or value == "":
            return None
        if isinstance(value, Sealed):
            return value
        if isinstance(value, str):
            return Sealed.seal(value)  # plaintext from code, a form or a fixture
        raise TypeError("EncryptedTextField accepts str, Sealed or None")

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Sealed | None:
        return Sealed(value) if value else None

    def get_prep_value(self, value: Any) -> str | None:
        value = self.to_python(value)
        return value.ciphertext if value is not None else None

    def value_to_string(self, obj: Any) -> str:
        # dumpdata carries no secrets at all: loaddata would take ciphertext for plaintext.
        return ""


class EncryptedJSONField(_JSONTextField):
    """Stores Fernet ciphertext of a JSON document; the Python value is the plain document.

    Unlike EncryptedTextField the value is plain on the instance, because its readers (the
    health engine, the MCP client, the client config) need the dict itself. Every presentation
    (API, admin, audit, export, dumpdata) must therefore redact it on the way out.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("blank", True)
        kwargs.setdefault("default", dict)
        kwargs.setdefault("editable", False)  # forms use explicit write-only inputs instead
        super().__init__(*args, **kwargs)

    def to_python(self, value: Any) -> Any:
        # A dict from code or a JSON fixture; a str is a JSON document (XML/YAML fixtures).
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                raise ValidationError("Enter a valid JSON document.", code="invalid") from None
        return value

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None:
            return None
        # Raises DecryptionError for a value no key can read: never hands back ciphertext.
        return json.loads(crypto.decrypt(value))

    def get_prep_value(self, value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, Sealed):
            return value.ciphertext  # already encrypted: rotate_encryption_keys writes these
        return crypto.encrypt(json.dumps(self.to_python(value)))

    def value_to_string(self, obj: Any) -> str:
        # dumpdata keeps the names, never the values, as export_servers does. A JSON string,
        # not a dict, so every serializer (XML too) can write it and to_python reads it back.
        value = self.value_from_object(obj)
        return json.dumps({key: "" for key in value} if isinstance(value, dict) else {})
