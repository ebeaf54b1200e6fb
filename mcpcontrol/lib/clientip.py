"""Who is the client? One rule for throttles, the login throttle and the audit trail."""

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    """The client's address, trusting X-Forwarded-For only as far as our own proxies write it.

    Each of MCPCONTROL_TRUSTED_PROXIES proxies appends the address it saw, so the client is
    the N-th entry from the right (DRF's NUM_PROXIES rule); the entries left of it are what
    the client claimed and prove nothing. Without trusted proxies, or with an entry that is
    not an address (a misconfigured proxy count), it is REMOTE_ADDR.
    """
    remote = request.META.get("REMOTE_ADDR") or None
    proxies: int = settings.MCPCONTROL_TRUSTED_PROXIES
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies <= 0 or not forwarded:
        return remote
    entries = [entry.strip() for entry in forwarded.split(",")]
    try:
        return str(ipaddress.ip_address(entries[-min(proxies, len(entries))]))
    except ValueError:
        return remote
