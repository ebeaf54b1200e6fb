"""One guard for every outbound URL (SSRF protection).

Only http, https, ws and wss are allowed. Link-local and cloud metadata addresses are always
refused. Private and loopback ranges are allowed only when
settings.MCPCONTROL_ALLOW_PRIVATE_UPSTREAMS is on (the default in embedded mode, where the
MCP servers usually run on the same machine).
"""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings

ALLOWED_SCHEMES = frozenset({"http", "https", "ws", "wss"})
# Metadata endpoints of the big clouds; all but the last are link-local already.
_METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "instance-data"})
_METADATA_ADDRESSES = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),
        ipaddress.ip_address("fd00:ec2::254"),
        ipaddress.ip_address("100.100.100.200"),
    }
)


class BlockedUrl(ValueError):
    """The URL may not be contacted; the message says why (safe to show to an operator)."""


def check_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address, host: str) -> None:
    """Raise BlockedUrl if `address` may not be contacted; `host` names it in the message."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address in _METADATA_ADDRESSES or address.is_link_local:
        raise BlockedUrl(f"{host} is a link-local or cloud metadata address")
    if address.is_multicast or address.is_unspecified:
        raise BlockedUrl(f"{host} is not a routable address")
    # Before is_reserved: Python counts ::1 as reserved, and loopback is a setting's call.
    if address.is_private or address.is_loopback:
        if not settings.MCPCONTROL_ALLOW_PRIVATE_UPSTREAMS:
            raise BlockedUrl(
                f"{host} is a private or loopback address "
                "(set MCPCONTROL_ALLOW_PRIVATE_UPSTREAMS=1 to allow it)"
            )
        return
    if address.is_reserved:
        raise BlockedUrl(f"{host} is not a routable address")


def check_url(url: str, *, resolve: bool = True) -> str:
    """Return the URL unchanged if it may be contacted, else raise BlockedUrl.

    With resolve=True every address the host resolves to is checked, so a public name
    pointing at a private address is refused too.
    """
    parts = urlsplit(url)
    if parts.scheme not in ALLOWED_SCHEMES:
        raise BlockedUrl(
            f"scheme {parts.scheme or '(none)'!r} is not allowed; use http, https, ws or wss"
        )
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise BlockedUrl("URL has no host")
    if host in _METADATA_HOSTS:
        raise BlockedUrl(f"{host} is a cloud metadata host")
    try:
        check_address(ipaddress.ip_address(host), host)
        return url
    except ValueError as exc:
        if isinstance(exc, BlockedUrl):
            raise
    if not resolve:
        return url
    try:
        infos = socket.getaddrinfo(host, parts.port or None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return url  # unresolvable: the connection attempt reports it as unreachable
    for info in infos:
        check_address(ipaddress.ip_address(info[4][0]), host)
    return url


def resolve_checked(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to, each one checked; BlockedUrl if any is refused.

    For the connection itself: connecting to one of these literals (not to the name again)
    leaves no window for the name to resolve elsewhere between the check and the connect.
    Resolution failures raise socket.gaierror (an OSError), like a connect would.
    """
    name = host.rstrip(".").lower()
    if name in _METADATA_HOSTS:
        raise BlockedUrl(f"{name} is a cloud metadata host")
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    for address in addresses:
        check_address(ipaddress.ip_address(address), name)
    return addresses


def check_url_static(url: str, *, allowed_schemes: tuple[str, ...] | frozenset[str] = ()) -> str:
    """Check a URL when it is saved, without any DNS lookup: scheme, syntax, literal addresses
    and metadata names. Names are checked again, resolved, on every use (netguard)."""
    if any(c in url for c in "\r\n\x00 \t"):
        raise BlockedUrl("URL may not contain white space, CR, LF or NUL")
    schemes = frozenset(allowed_schemes) or ALLOWED_SCHEMES
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".").lower()
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise BlockedUrl(f"URL cannot be parsed: {exc}") from None
    if parts.scheme not in schemes:
        allowed = ", ".join(sorted(schemes))
        raise BlockedUrl(f"scheme {parts.scheme or '(none)'!r} is not allowed; use {allowed}")
    return check_url(url, resolve=False) if host else _no_host()


def _no_host() -> str:
    raise BlockedUrl("URL has no host")
