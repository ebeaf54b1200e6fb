"""Check failures in plain words, and the short cause (error_class) the history keeps.

The probe's messages are precise but technical ("cannot connect: [Errno 111] Connection
refused"); operators read "cannot connect to 127.0.0.1:8765: connection refused" first and
open the raw text only when they need it.
"""

import re
from urllib.parse import urlsplit

_HTTP_STATUS = re.compile(r"HTTP (\d{3})")
_WITHIN = re.compile(r"within ([\d.]+)\s*s")
# (needle in the lower-cased message, error_class, plain words); first match wins.
_CONNECT_CAUSES = (
    ("refused", "connection_refused", "connection refused"),
    ("all connection attempts failed", "connection_refused", "connection refused"),
    ("name or service not known", "dns", "the host name does not resolve"),
    ("nodename nor servname", "dns", "the host name does not resolve"),
    ("temporary failure in name resolution", "dns", "the host name does not resolve"),
    ("certificate", "tls", "its TLS certificate was not accepted"),
    ("ssl", "tls", "the TLS handshake failed"),
    ("unreachable", "network_unreachable", "the network is unreachable"),
    ("reset", "connection_reset", "the connection was reset"),
)


def error_class(outcome: str, message: str) -> str:
    """A short, stable cause for a failed check ("" for a healthy one)."""
    return _explain(outcome, message, "")[0]


def plain_error(*, where: str, outcome: str, message: str) -> str:
    """The failure in plain words, naming where we tried to go (see where())."""
    return _explain(outcome, message, where)[1]


def where(*, transport: str, url: str, command: str) -> str:
    """host:port of a remote server, "command <name>" of a stdio one."""
    if transport == "stdio":
        return f"command {command or '?'}"
    try:
        parts = urlsplit(url)
        default = {"https": 443, "wss": 443}.get(parts.scheme, 80)
        return f"{parts.hostname or '?'}:{parts.port or default}"
    except ValueError:
        return url or "?"


def _explain(outcome: str, message: str, where: str) -> tuple[str, str]:
    low = message.lower()
    if outcome == "healthy":
        return "", "healthy"
    if low.startswith("url refused"):
        return "url_refused", f"the URL is not allowed here: {message.split(':', 1)[-1].strip()}"
    if outcome == "timeout":
        limit = _WITHIN.search(message)
        after = f" within {limit.group(1)} s" if limit else " in time"
        return "timeout", f"no answer from {where}{after}"
    if low.startswith("command not found"):
        return "command_not_found", f"cannot start {where}: command not found"
    if outcome == "unreachable":
        for needle, cause, words in _CONNECT_CAUSES:
            if needle in low:
                return cause, f"cannot connect to {where}: {words}"
        return "connect_failed", f"cannot connect to {where}"
    status = _HTTP_STATUS.search(message)
    if outcome == "auth_required":
        if status:
            return f"http_{status.group(1)}", (
                f"{where} refused our credentials (HTTP {status.group(1)}): connect or "
                "update the credential"
            )
        return "no_credential", f"no credential stored for {where}: {message}"
    if status:
        return f"http_{status.group(1)}", f"{where} answered HTTP {status.group(1)}"
    if outcome == "protocol_error":
        return "not_mcp", f"{where} does not speak MCP as expected"
    return outcome or "unknown", f"{outcome.replace('_', ' ')} at {where}"
