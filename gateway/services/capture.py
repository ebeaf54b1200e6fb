"""Argument capture for the ToolCall trail (MCPCONTROL_GATEWAY_CAPTURE_ARGUMENTS, off by
default): a copy of the call's arguments that is safe to store.

Redaction, before anything is cut (so a secret is never left half-visible at a cut):
1. the value of every key that looks like it names a secret (password, token, key, auth...)
   is replaced whole; the pattern over-matches on purpose ("keyword" too);
2. every occurrence of a secret of the credential this call was routed with (header values
   and their words, stdio env values and arguments, URL query values and password, all
   after ${VAR} substitution) is replaced wherever
   it appears, in keys or values;
3. strings longer than MCPCONTROL_GATEWAY_CAPTURE_MAX_CHARS are cut; lists and objects keep
   their first MAX_ITEMS entries; nesting deeper than MAX_DEPTH is dropped.
"""

import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from django.conf import settings

from servers.mcp_client import Target

REDACTED = "[redacted]"
SECRET_KEY = re.compile(r"pass|secret|token|key|auth|credential|cookie|session|signature|"
                        r"private|bearer|jwt|otp|pin", re.IGNORECASE)  # fmt: skip
MIN_SECRET_CHARS = 6  # shorter credential values ("Bearer", "true") are words, not secrets
MAX_ITEMS = 100
MAX_DEPTH = 10


def credential_secrets(target: Any) -> list[str]:
    """The values of the resolved credential a Target carries, longest first (so a secret
    that contains another is replaced whole)."""
    if not isinstance(target, Target):
        return []  # not resolved (a refused or unrouted call): no credential was used
    found: set[str] = set()
    for value in [*target.headers.values(), *target.env.values(), *target.args]:
        found.add(value)
        found.update(value.split())
    parts = urlsplit(target.url) if target.url else None
    if parts is not None:
        found.update(v for _, v in parse_qsl(parts.query))
        found.add(parts.password or "")
    return sorted((s for s in found if len(s) >= MIN_SECRET_CHARS), key=len, reverse=True)


def _text(value: str, secrets: list[str], limit: int) -> str:
    for secret in secrets:
        value = value.replace(secret, REDACTED)
    if len(value) > limit:
        value = f"{value[:limit]}…[{len(value) - limit} more characters]"
    return value


def _redact(value: Any, secrets: list[str], limit: int, depth: int) -> Any:
    if depth > MAX_DEPTH:
        return "[nested too deep]"
    if isinstance(value, str):
        return _text(value, secrets, limit)
    if isinstance(value, dict):
        out = {}
        for key, item in list(value.items())[:MAX_ITEMS]:
            name = _text(str(key), secrets, limit)
            hide = SECRET_KEY.search(str(key)) is not None
            out[name] = REDACTED if hide else _redact(item, secrets, limit, depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [_redact(item, secrets, limit, depth + 1) for item in value[:MAX_ITEMS]]
    if value is None or isinstance(value, bool | int | float):
        return _redact(str(value), secrets, limit, depth) if _leaks(value, secrets) else value
    return _text(str(value), secrets, limit)


def _leaks(value: Any, secrets: list[str]) -> bool:
    """A number can be a secret too (a PIN in an env value)."""
    text = str(value)
    return any(secret in text for secret in secrets)


def arguments_captured(arguments: dict[str, Any] | None, target: Any) -> Any:
    """The arguments to store on the call's row, redacted; None while capture is off."""
    if not settings.MCPCONTROL_GATEWAY_CAPTURE_ARGUMENTS:
        return None
    limit = int(settings.MCPCONTROL_GATEWAY_CAPTURE_MAX_CHARS)
    return _redact(arguments or {}, credential_secrets(target), limit, 0)
