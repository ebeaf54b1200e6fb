"""Cursor pagination of the gateway's lists (tools, resources, templates, prompts).

A cursor is opaque to the client: base64url of "v1:<name>:<offset>", the name of the last
item handed out and where it sat. The next page starts after that name if it is still in the
list (so a list that changed between pages neither repeats nor skips around it), else where
the name would now sit, the offset less one (at worst an item is repeated, never skipped). Anything that does not decode is the client's mistake: INVALID_PARAMS, not a crash.
"""

import base64
import binascii
from collections.abc import Callable, Sequence

from django.conf import settings
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS

MAX_CURSOR = 2048  # characters; a cursor we made is far shorter


def page_size() -> int:
    return int(getattr(settings, "MCPCONTROL_GATEWAY_PAGE_SIZE", 100))


def _encode(name: str, offset: int) -> str:
    return base64.urlsafe_b64encode(f"v1:{offset}:{name}".encode()).decode().rstrip("=")


def _decode(cursor: str) -> tuple[str, int]:
    try:
        if len(cursor) > MAX_CURSOR:
            raise ValueError("too long")
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, offset, name = raw.split(":", 2)
        if version != "v1" or not offset.isdigit():
            raise ValueError("not ours")
        return name, int(offset)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise MCPError(INVALID_PARAMS, "invalid cursor: list again without one") from exc


def page[T](
    items: Sequence[T], cursor: str | None, *, name_of: Callable[[T], str], size: int | None = None
) -> tuple[list[T], str | None]:
    """The page of `items` (in their stable order) after `cursor`, and the next page's cursor."""
    size = size or page_size()
    start = 0
    if cursor is not None:
        name, offset = _decode(cursor)
        # The last name's successor; if that name is gone, the items after it moved up one.
        found = next((i + 1 for i, item in enumerate(items) if name_of(item) == name), None)
        start = found if found is not None else max(0, offset - 1)
    chunk = list(items[start : start + size])
    end = start + len(chunk)
    following = _encode(name_of(chunk[-1]), end) if chunk and end < len(items) else None
    return chunk, following
