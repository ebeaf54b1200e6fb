"""Finding an MCP server's authorization server (MCP authorization spec, 2025-06-18+).

1. Ask the MCP endpoint without a token; a 401 names the protected resource metadata in
   the `resource_metadata` parameter of its WWW-Authenticate challenge (RFC 9728 5.1).
2. Else try the well-known protected resource metadata paths (RFC 9728 3.1).
3. Read the authorization server metadata (RFC 8414), falling back to OpenID discovery.
"""

import logging
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from credentials.oauth.errors import OAuthError, OAuthTransientError, transport_error
from mcpcontrol.lib import http

logger = logging.getLogger(__name__)

_RESOURCE_METADATA_RE = re.compile(
    r'resource_metadata\s*=\s*"([^"]+)"|resource_metadata\s*=\s*([^\s,]+)'
)
# A minimal initialize request: some servers only challenge a real JSON-RPC POST.
_PROBE_BODY = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "mcpcontrol", "version": "1.0"},
    },
}


@dataclass(frozen=True)
class Discovery:
    """What discovery learned: the resource to name (RFC 8707) and the AS metadata."""

    resource: str
    issuer: str
    metadata: dict[str, Any]
    resource_metadata: dict[str, Any] = field(default_factory=dict)

    def endpoint(self, name: str) -> str:
        value = self.metadata.get(name)
        return value if isinstance(value, str) else ""


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _get_json(client: httpx.Client, url: str) -> dict[str, Any] | None:
    """The JSON object at url, None on 4xx or non-JSON; transient errors raise."""
    try:
        response = client.get(http.guarded(url), headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise transport_error(exc, what=f"GET {url}") from exc
    if response.status_code >= 500:
        raise OAuthTransientError("server_error", f"GET {url}: HTTP {response.status_code}")
    if response.status_code != 200:
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _challenge_metadata_url(client: httpx.Client, server_url: str) -> str | None:
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    try:
        response = client.post(http.guarded(server_url), json=_PROBE_BODY, headers=headers)
    except httpx.HTTPError as exc:
        raise transport_error(exc, what=f"POST {server_url}") from exc
    if response.status_code != 401:
        return None
    match = _RESOURCE_METADATA_RE.search(response.headers.get("WWW-Authenticate", ""))
    return (match.group(1) or match.group(2)) if match else None


def _resource_metadata(client: httpx.Client, server_url: str) -> dict[str, Any]:
    parts = urlsplit(server_url)
    path = parts.path.rstrip("/")
    candidates = [_challenge_metadata_url(client, server_url)]
    candidates += [f"{_origin(server_url)}/.well-known/oauth-protected-resource{path}"]
    candidates += [f"{_origin(server_url)}/.well-known/oauth-protected-resource"]
    for url in filter(None, dict.fromkeys(candidates)):
        body = _get_json(client, url)
        if body and body.get("authorization_servers"):
            return body
    return {}


def _issuer_metadata_urls(issuer: str) -> list[str]:
    """RFC 8414 3.1 inserts the well-known segment before the issuer's path; OpenID appends."""
    origin, path = _origin(issuer), urlsplit(issuer).path.rstrip("/")
    urls = [f"{origin}/.well-known/oauth-authorization-server{path}"]
    urls.append(f"{origin}/.well-known/openid-configuration{path}")
    if path:
        urls.append(f"{origin}{path}/.well-known/openid-configuration")
    return urls


def _server_metadata(client: httpx.Client, issuer: str) -> dict[str, Any]:
    for url in _issuer_metadata_urls(issuer):
        body = _get_json(client, url)
        if body and body.get("token_endpoint"):
            _check_issuer(body, issuer)
            return body
    raise OAuthError("discovery_failed", f"no authorization server metadata found for {issuer}")


def _check_issuer(metadata: dict[str, Any], issuer: str) -> None:
    """RFC 8414 3.3: the document must name the issuer it was fetched for.

    Otherwise one authorization server could pose as another (a mix-up attack) and
    collect codes or tokens meant for it.
    """
    named = str(metadata.get("issuer") or "")
    if named.rstrip("/") != issuer.rstrip("/"):
        raise OAuthError(
            "discovery_failed",
            f"authorization server metadata names issuer {named or '(none)'}, not {issuer}",
        )


def discover(server_url: str) -> Discovery:
    """Discover the authorization server of the MCP server at server_url.

    Without protected resource metadata the server's own origin is tried as the issuer,
    as the 2025-03-26 MCP spec did.
    """
    with http.client() as client:
        resource_metadata = _resource_metadata(client, server_url)
        servers = resource_metadata.get("authorization_servers") or [_origin(server_url)]
        issuer = str(servers[0])
        metadata = _server_metadata(client, issuer)
    resource = str(resource_metadata.get("resource") or server_url)
    if _origin(resource) != _origin(server_url):
        # RFC 9728 3.3: metadata naming another resource could steer our tokens elsewhere.
        raise OAuthError(
            "discovery_failed", f"resource metadata names {resource}, not {server_url}"
        )
    return Discovery(
        resource=resource,
        issuer=str(metadata.get("issuer") or issuer),
        metadata=metadata,
        resource_metadata=resource_metadata,
    )
