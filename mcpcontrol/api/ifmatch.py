"""Optimistic locking over HTTP: ETag out, If-Match (or a body `version`) in.

The lock itself is the service's conditional UPDATE (servers.services.server_update); this
only reads what version the client says it read, once for every view that needs it.
"""

import re
from typing import Any

from rest_framework.request import Request

from mcpcontrol.api.errors import PreconditionFailed

# A weak or strong ETag of a version number; at most 10 digits (a version fits in 32 bits).
ETAG_RE = re.compile(r'^\s*(?:W/)?"?(\d{1,10})"?\s*$')


def etag(obj: Any) -> str:
    return f'W/"{obj.version}"'


class IfMatchMixin:
    """For views of versioned objects: `if_match_version` reads If-Match."""

    def if_match_version(self, obj: Any) -> int | None:
        """The version If-Match names: None without the header, 412 when it is not current."""
        request: Request = self.request  # type: ignore[attr-defined]  # the view's request
        raw = request.headers.get("If-Match")
        if raw is None:
            return None
        if raw.strip() == "*":
            return int(obj.version)
        match = ETAG_RE.match(raw)
        if match is None or int(match.group(1)) != obj.version:
            raise PreconditionFailed()
        return int(obj.version)
