"""One guard for every outbound URL (SSRF protection).

Only http, https, ws and wss are allowed. Link-local and cloud metadata addresses are always
refused. Private and loopback ranges are allowed only when
settings.MCPCONTROL_ALLOW_PRIVATE_UPSTREAMS is on (the default in embedded mode, where the
MCP servers usually run on the same machine).

Two moments use it: check_url_static() when a URL is saved (no DNS: the scheme, the shape
and literal addresses in every spelling), check_url()/resolve_checked() when it is used
(names resolved and each address checked; lib/netguard connects only to those addresses).
"""

import ipaddress
import re
import socket
import unicodedata
from collections.abc import Collection
from urllib.parse import SplitResult, urlsplit

from django.conf import settings

type IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

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
_LOOPBACK = ipaddress.ip_address("127.0.0.1")
# NAT64 (RFC 6052, RFC 8215): the IPv4 host is reached through a translator.
_NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
# Where RFC 6052 puts the IPv4 address for the prefix lengths a /48 can hold: the octets
# after the prefix, skipping octet 8 (the "u" octet, always zero).
_NAT64_EMBEDDINGS = tuple(
    tuple(i for i in range(length // 8, 16) if i != 8)[:4] for length in (48, 56, 64, 96)
)
_HOST_NAME = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*")
_BRACKETED_HOST = re.compile(r"\[[^\[\]]*\](?::[0-9]*)?")
# inet_aton's number forms (hex, octal, decimal); decimal is bounded so int() stays cheap.
_IPV4_PART = re.compile(r"0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]{0,9}")


class BlockedUrl(ValueError):
    """The URL may not be contacted; the message says why (safe to show to an operator)."""


# --- addresses -----------------------------------------------------------------------------


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address leads to through a translator or a tunnel."""
    value = int(address)
    found = [address.ipv4_mapped, address.sixtofour, *(address.teredo or ())]
    if value >> 32 == 0 and value > 1:  # IPv4-compatible ::a.b.c.d (deprecated, not :: or ::1)
        found.append(ipaddress.IPv4Address(value & 0xFFFFFFFF))
    if address in _NAT64_WELL_KNOWN:
        found.append(ipaddress.IPv4Address(value & 0xFFFFFFFF))
    if address in _NAT64_LOCAL:  # the operator picks the prefix length: check every reading
        packed = address.packed
        found += [ipaddress.IPv4Address(bytes(packed[i] for i in at)) for at in _NAT64_EMBEDDINGS]
    return [v4 for v4 in found if v4 is not None]


def _translated(address: ipaddress.IPv6Address) -> bool:
    """True when the IPv6 address is only a spelling of its IPv4 one (mapped or NAT64), so
    the IPv4 address alone decides; 6to4 and Teredo addresses are checked as IPv6 too."""
    return bool(address.ipv4_mapped) or address in _NAT64_WELL_KNOWN or address in _NAT64_LOCAL


def check_address(address: IPAddress, host: str) -> None:
    """Raise BlockedUrl if `address` may not be contacted; `host` names it in the message.

    An IPv6 address that carries an IPv4 one (IPv4-mapped or -compatible, 6to4, Teredo,
    NAT64) is refused when the IPv4 address would be: the packets end up there.
    """
    if isinstance(address, ipaddress.IPv6Address):
        for ipv4 in _embedded_ipv4(address):
            _check_one(ipv4, host)
        if _translated(address):
            return
    _check_one(address, host)


def _check_one(address: IPAddress, host: str) -> None:
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


def _ipv4_number(part: str) -> int:
    if part[:2].lower() == "0x":
        return int(part[2:], 16)
    return int(part, 8 if part[0] == "0" else 10)


def _ipv4_spelling(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address `host` spells the way inet_aton (and so getaddrinfo) reads it, else None.

    One to four dot-separated numbers, each decimal, octal (leading 0) or hex (0x); the
    last fills the bytes left: 2852039166, 0xA9FEA9FE, 0251.0376.0251.0376 and 169.254.43518
    all spell 169.254.169.254.
    """
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or not all(_IPV4_PART.fullmatch(part) for part in parts):
        return None
    *head, last = [_ipv4_number(part) for part in parts]
    if any(byte > 255 for byte in head) or last >= 1 << (8 * (4 - len(head))):
        return None
    value = last
    for index, byte in enumerate(head):
        value |= byte << (24 - 8 * index)
    return ipaddress.IPv4Address(value)


def _literal(host: str) -> IPAddress | None:
    """The address a host names without DNS: an IP literal in any spelling, or localhost."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host == "localhost" or host.endswith(".localhost"):  # loopback by RFC 6761, no lookup
        return _LOOPBACK
    return _ipv4_spelling(host)


def _idna(host: str) -> str:
    """The host as the resolver would send it: IDNA folds look-alikes to ASCII (127.0.0.1 in
    fullwidth digits reaches 127.0.0.1). Unchanged if it cannot be encoded."""
    try:
        return host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return host


def _check_host(host: str) -> bool:
    """Refuse metadata names and forbidden literals, also in their IDNA-folded spelling.

    True if the host names an address without DNS (a literal or localhost), now checked.
    """
    for spelling in dict.fromkeys((host, _idna(host))):
        if spelling in _METADATA_HOSTS:
            raise BlockedUrl(f"{host} is a cloud metadata host")
        address = _literal(spelling)
        if address is not None:
            check_address(address, host)
            return True
    return False


# --- URLs ----------------------------------------------------------------------------------


def _split(url: str, schemes: Collection[str]) -> tuple[SplitResult, str]:
    """The parsed URL and its host (lower case, no trailing dot); BlockedUrl if malformed."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError as exc:
        raise BlockedUrl(f"not a valid URL: {exc}") from exc
    if parts.scheme not in schemes:
        allowed = ", ".join(sorted(schemes))
        raise BlockedUrl(f"scheme {parts.scheme or '(none)'!r} is not allowed; use {allowed}")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise BlockedUrl("URL has no host")
    return parts, host


def check_url(url: str, *, resolve: bool = True) -> str:
    """Return the URL unchanged if it may be contacted, else raise BlockedUrl.

    With resolve=True every address the host resolves to is checked, so a public name
    pointing at a private address is refused too.
    """
    parts, host = _split(url, ALLOWED_SCHEMES)
    if _check_host(host) or not resolve:
        return url
    try:
        infos = socket.getaddrinfo(host, parts.port or None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return url  # unresolvable: the connection attempt reports it as unreachable
    for info in infos:
        check_address(ipaddress.ip_address(info[4][0]), host)
    return url


def _refuse_unsafe_characters(url: str) -> None:
    # Whitespace and control characters: urlsplit silently drops tab, CR and LF (so the URL
    # used is not the one shown), and CR/LF/NUL reaching a request line or a header split it.
    for char in url:
        if char.isspace() or unicodedata.category(char) == "Cc":
            raise BlockedUrl(f"URL contains a whitespace or control character ({char!r})")


def _refuse_bad_host(parts: SplitResult, host: str) -> None:
    """Refuse a bracketed host that is no IPv6 address, and a name DNS could not carry
    (percent signs, backslashes, empty labels: parsers disagree on what those reach)."""
    hostport = parts.netloc.rpartition("@")[2]
    if "[" in hostport or "]" in hostport:
        if not _BRACKETED_HOST.fullmatch(hostport) or ":" not in host:
            raise BlockedUrl(f"[{host}] is not an IPv6 address")
    elif not _HOST_NAME.fullmatch(_idna(host)):
        raise BlockedUrl(f"{host!r} is not a valid host name")


def check_url_static(url: str, *, allowed_schemes: Collection[str] = ALLOWED_SCHEMES) -> str:
    """Return `url` unchanged if it may be saved, else raise BlockedUrl. Makes no DNS lookup.

    For validating stored URLs: the scheme (one of `allowed_schemes`, e.g. {"http", "https"}
    for OAuth endpoints), the shape, the host's characters and literal addresses in every
    spelling (IPv6 forms carrying an IPv4 one, numeric IPv4 forms, localhost) and metadata
    host names. Other names are checked where they are used (check_url, lib/netguard), since
    what they resolve to can change after saving.

    Userinfo (`user:pass@host`) is refused: the password would be stored and shown as part
    of a plain URL field instead of a sealed credential, and `trusted@evil` misleads readers
    about the host. Credentials belong in the server's auth settings.
    """
    _refuse_unsafe_characters(url)
    parts, host = _split(url, allowed_schemes)
    if parts.username is not None or parts.password is not None:
        raise BlockedUrl("URL must not carry credentials (user:pass@); use the auth settings")
    _refuse_bad_host(parts, host)
    _check_host(host)
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
