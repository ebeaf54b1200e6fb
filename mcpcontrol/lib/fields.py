"""Encrypted model fields: EncryptedTextField for one secret, EncryptedJSONField for a map.

EncryptedTextField's value never exists in plain text on the instance. Assigning a str
encrypts it at once (the attribute then holds a `Sealed`), the database column holds Fernet
ciphertext, and reading the secret back is an explicit `.reveal()` call. So a secret cannot
leak through repr(), model_to_dict(), a serializer or the admin by accident.

Backups: dumpdata writes the ciphertext behind a "fernet:" prefix and loaddata stores it back
as it was, so a dump restores every secret with the same keys and never holds plaintext.
A value no configured key can decrypt degrades its own row only (see Unreadable).
"""

import json
import logging
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import models

from mcpcontrol.lib import crypto
from mcpcontrol.lib import ids as _ids  # noqa: F401  (DEFAULT_AUTO_FIELD: the type checker must see it with the models)

logger = logging.getLogger(__name__)

# Marks a serialized ciphertext (dumpdata) so loaddata does not take it for plaintext.
CIPHERTEXT_PREFIX = "fernet:"


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


def is_unreadable(value: "Sealed | None") -> bool:
    """Whether a stored secret is there but no configured key (or codec) opens it."""
    if value is None:
        return False
    try:
        value.reveal()
    except crypto.DecryptionError:
        return True
    return False


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

    sealed_class: type[Sealed] = Sealed

    def rotates_with_encryption_keys(self) -> bool:
        return True

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
        if isinstance(value, str) and value.startswith(CIPHERTEXT_PREFIX):
            return self.sealed_class(value.removeprefix(CIPHERTEXT_PREFIX))  # a dumpdata backup
        if isinstance(value, str):
            return self.sealed_class.seal(value)  # plaintext from code, a form or a fixture
        raise TypeError("EncryptedTextField accepts str, Sealed or None")

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Sealed | None:
        return self.sealed_class(value) if value else None

    def get_prep_value(self, value: Any) -> str | None:
        value = self.to_python(value)
        return value.ciphertext if value is not None else None

    def value_to_string(self, obj: Any) -> str:
        # dumpdata carries the ciphertext, marked so loaddata keeps it as ciphertext.
        value = self.value_from_object(obj)
        return f"{CIPHERTEXT_PREFIX}{value.ciphertext}" if isinstance(value, Sealed) else ""


class TokenSealed(Sealed):
    """A token value sealed by the token codec (MCPCONTROL_TOKEN_CODEC): Fernet by default, or
    the CREDS_KEY/CREDS_IV format shared with another application reading the same rows."""

    __slots__ = ()

    @classmethod
    def seal(cls, plaintext: str) -> "Sealed":
        return cls(crypto.token_encrypt(plaintext))

    def reveal(self) -> str:
        return crypto.token_decrypt(self.ciphertext)


class TokenValueField(EncryptedTextField):
    """EncryptedTextField whose values go through the token codec (tokens.Token.token)."""

    sealed_class = TokenSealed

    def rotates_with_encryption_keys(self) -> bool:
        # Shared-format values are under CREDS_KEY, which rotate_encryption_keys cannot touch.
        return not crypto.token_codec_shared()

    def deconstruct(self) -> Any:
        # The codec is a run-time setting, not schema: the column is the same text column, so
        # migrations keep seeing an EncryptedTextField and none is generated for the switch.
        name, _path, args, kwargs = super().deconstruct()
        return name, "mcpcontrol.lib.fields.EncryptedTextField", args, kwargs


class Unreadable:
    """An encrypted document no configured key can decrypt (a key was removed too early).

    It keeps the ciphertext, so saving other fields of the row never destroys the value, and it
    is not a dict, so no reader can mistake it for an empty document: readers check for it and
    report "credentials unreadable" for this row only.
    """

    __slots__ = ("ciphertext",)

    def __init__(self, ciphertext: str) -> None:
        self.ciphertext = ciphertext

    def __repr__(self) -> str:
        return "<Unreadable secret>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Unreadable) and other.ciphertext == self.ciphertext

    def __hash__(self) -> int:
        return hash(self.ciphertext)


UNREADABLE_MESSAGE = "credentials unreadable: key missing"
_reported: set[tuple[str, object]] = set()


def report_unreadable(label: str, pk: object) -> None:
    """Log an unreadable secret once per row and process: enough to find it, never a flood."""
    if (label, pk) in _reported:
        return
    _reported.add((label, pk))
    logger.error("%s %s: %s (restore the key that wrote it, then rotate)", label, pk,
                 UNREADABLE_MESSAGE)  # fmt: skip


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
        # A dict from code or a JSON fixture; a str is a JSON document (XML/YAML fixtures) or
        # a dumpdata ciphertext.
        if isinstance(value, str) and value.startswith(CIPHERTEXT_PREFIX):
            return Sealed(value.removeprefix(CIPHERTEXT_PREFIX))
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                raise ValidationError("Enter a valid JSON document.", code="invalid") from None
        return value

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None:
            return None
        try:
            return json.loads(crypto.decrypt(value))
        except crypto.DecryptionError:
            # One row's unreadable value must not fail every query that loads it; the reader
            # that meets it reports it (report_unreadable), knowing which row it is.
            return Unreadable(value)

    def get_prep_value(self, value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, Sealed | Unreadable):
            return value.ciphertext  # already encrypted: rotation and backups write these
        return crypto.encrypt(json.dumps(self.to_python(value)))

    def value_to_string(self, obj: Any) -> str:
        # dumpdata writes the ciphertext (marked), never the document: a backup restores it.
        ciphertext = self.get_prep_value(self.value_from_object(obj))
        return f"{CIPHERTEXT_PREFIX}{ciphertext}" if ciphertext is not None else ""
