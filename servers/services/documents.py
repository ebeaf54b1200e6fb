"""Applying a server document (servers.document) to the registry: one path for the REST API,
registry files and client configs, so the seeds' bodies mean the same everywhere."""

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError

from audit.services import REDACTED
from servers.document import UNSET, DocumentError, ServerInput, parse
from servers.models import McpServer
from servers.services.registry import (
    server_register,
    server_secret_maps_resolve,
    server_update,
    server_update_preview,
)

# Checks who may create or change what; raises PermissionDenied. Returns the fields to use.
Authorize = Callable[[McpServer | None, dict[str, Any]], dict[str, Any]]


def _model_errors(doc: ServerInput, exc: ValidationError) -> DocumentError:
    errors = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
    return DocumentError(doc.api_errors(errors))


def _fields(doc: ServerInput, server: McpServer | None, placeholder: str) -> dict[str, Any]:
    try:
        return server_secret_maps_resolve(
            server=server, changes=doc.fields, placeholder=placeholder
        )
    except ValidationError as exc:
        raise _model_errors(doc, exc) from None


def _changing(server: McpServer, fields: dict[str, Any]) -> dict[str, Any]:
    """The fields whose value differs from the server's. Authorization judges only these: a
    GET body sent back names the owner, the stdio command and more, and changes none of them."""
    return {name: value for name, value in fields.items() if getattr(server, name) != value}


def server_create_from_document(
    *, actor: Any, body: Any, authorize: Authorize | None = None, placeholder: str = REDACTED
) -> McpServer:
    """Register the server a document describes. Raises DocumentError (keys as sent) or
    PermissionDenied (from `authorize`)."""
    doc = parse(body)
    fields = _fields(doc, None, placeholder)
    if authorize is not None:
        fields = authorize(None, fields)
    try:
        return server_register(actor=actor, auth_secret=doc.auth_secret, **fields)
    except ValidationError as exc:
        raise _model_errors(doc, exc) from None


def server_update_from_document(
    *,
    actor: Any,
    server: McpServer,
    body: Any,
    expected_version: int | None = None,
    authorize: Authorize | None = None,
    placeholder: str = REDACTED,
    require_version: bool = False,
) -> McpServer:
    """Apply a (partial) document to `server` with optimistic locking: the body's `version`,
    else `expected_version` (If-Match). A body that changes nothing writes nothing."""
    doc = parse(body, current=server)
    version = doc.version if doc.version is not None else expected_version
    if version is None and require_version:
        raise DocumentError({"version": ["Send the version you read, or If-Match."]})
    fields = _fields(doc, server, placeholder)
    if authorize is not None:
        fields = authorize(server, _changing(server, fields))
    try:
        return server_update(
            actor=actor, server=server, changes=fields, expected_version=version,
            auth_secret=doc.auth_secret,
        )  # fmt: skip
    except ValidationError as exc:
        raise _model_errors(doc, exc) from None


def server_document_changes(
    *, server: McpServer, body: Any, placeholder: str = REDACTED
) -> list[str]:
    """The fields a document would change on `server`, validated, without writing anything."""
    doc = parse(body, current=server)
    fields = _fields(doc, server, placeholder)
    try:
        changed = server_update_preview(server=server, changes=fields)
    except ValidationError as exc:
        raise _model_errors(doc, exc) from None
    return changed + (["auth_token"] if doc.auth_secret not in (UNSET, None) else [])


def server_document_check(*, body: Any, defaults: dict[str, Any], placeholder: str = "") -> None:
    """Validate a new server's document without writing it (dry runs)."""
    doc = parse(body)
    fields = {**defaults, **_fields(doc, None, placeholder)}
    server = McpServer(**fields)
    server.path = server.path or "/" + server.effective_alias
    try:
        server.full_clean()
    except ValidationError as exc:
        raise _model_errors(doc, exc) from None
