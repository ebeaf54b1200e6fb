"""What a header we send upstream may be (RFC 9110 section 5), checked when it is stored.

Names must be tokens; values may not hold CR, LF or NUL (they would split the request);
framing and hop-by-hop headers are ours to set: an operator's `Host` or `Content-Length`
would let one server's configuration steer or desynchronise the request.
"""

import re
from collections.abc import Mapping

TOKEN_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
FORBIDDEN_VALUE_RE = re.compile(r"[\r\n\x00]")
RESERVED = frozenset(
    {
        "host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade",
        "te", "trailer", "proxy-connection",
    }
)  # fmt: skip


def value_error(value: str) -> str:
    """Why `value` may not be sent in a header, or ""."""
    return "header values may not contain CR, LF or NUL" if FORBIDDEN_VALUE_RE.search(value) else ""


def header_errors(headers: Mapping[str, object]) -> str:
    """The first reason one of `headers` may not be sent, or "" when all may."""
    for name, value in headers.items():
        if not isinstance(name, str) or not TOKEN_RE.fullmatch(name):
            return f"header name {name!r} is not an HTTP token (RFC 9110)"
        if name.lower() in RESERVED:
            return f"header {name!r} is set by the connection itself and may not be configured"
        if not isinstance(value, str):
            return f"header {name!r} must have a string value"
        if problem := value_error(value):
            return f"header {name!r}: {problem}"
    return ""
