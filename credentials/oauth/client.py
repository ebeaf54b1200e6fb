"""Token endpoint requests (RFC 6749), dynamic registration (RFC 7591), revocation (RFC 7009)."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from credentials.oauth.errors import OAuthError, check_response, transport_error
from mcpcontrol.lib import http

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClientAuth:
    """How this client authenticates at the token and revocation endpoints."""

    client_id: str
    client_secret: str = ""
    method: str = "client_secret_post"  # client_secret_basic, client_secret_post or none

    def apply(self, data: dict[str, str]) -> httpx.BasicAuth | None:
        """Add the credentials to the form (post/none) or return HTTP Basic auth."""
        data["client_id"] = self.client_id
        if self.method == "client_secret_basic" and self.client_secret:
            return httpx.BasicAuth(self.client_id, self.client_secret)
        if self.method != "none" and self.client_secret:
            data["client_secret"] = self.client_secret
        return None

    def __repr__(self) -> str:
        return f"ClientAuth(method={self.method!r})"  # never the id or secret


@dataclass(frozen=True)
class TokenResponse:
    """A token response. refresh_token is None when the server sent none (keep the old one)."""

    access_token: str
    refresh_token: str | None
    expires_in: int | None
    scope: str = ""
    token_type: str = "Bearer"

    def expires_at(self, now: datetime) -> datetime | None:
        return now + timedelta(seconds=self.expires_in) if self.expires_in else None

    def __repr__(self) -> str:
        return f"TokenResponse(expires_in={self.expires_in!r}, rotated={self.refresh_token is not None})"


@dataclass(frozen=True)
class Registration:
    client_id: str
    client_secret: str
    token_endpoint_auth_method: str

    def __repr__(self) -> str:
        return f"Registration(method={self.token_endpoint_auth_method!r})"


def _token_response(body: dict[str, Any]) -> TokenResponse:
    access = body.get("access_token")
    if not isinstance(access, str) or not access:
        raise OAuthError("invalid_response", "token response has no access_token")
    if str(body.get("token_type", "Bearer")).lower() != "bearer":
        raise OAuthError("invalid_response", "token_type is not Bearer")
    expires_in = body.get("expires_in")
    refresh = body.get("refresh_token")
    return TokenResponse(
        access_token=access,
        refresh_token=refresh if isinstance(refresh, str) and refresh else None,
        expires_in=int(expires_in)
        if isinstance(expires_in, int | float | str) and expires_in
        else None,
        scope=str(body.get("scope") or ""),
    )


def token_request(
    *,
    token_url: str,
    auth: ClientAuth,
    params: dict[str, str],
    headers: dict[str, str] | None = None,
    client: httpx.Client | None = None,
) -> TokenResponse:
    """POST one grant to the token endpoint. Raises OAuthError (invalid_grant, ...) or
    OAuthTransientError (unreachable, timeout, 5xx).

    `client` lets a batch of refreshes share one connection pool; `headers` are the server's
    extra OAuth headers (seed 004 oauth_headers, e.g. GitHub's Accept: application/json).
    """
    data = {k: v for k, v in params.items() if v}
    basic = auth.apply(data)
    what = f"{params.get('grant_type', 'token')} request"
    sent = {**(headers or {}), "Accept": "application/json"}
    try:
        with _client_or(client) as session:
            response = session.post(
                http.guarded(token_url),
                data=data,
                # No Basic auth means the client default, which http.client() leaves unset.
                auth=basic or httpx.USE_CLIENT_DEFAULT,
                headers=sent,
            )
    except httpx.HTTPError as exc:
        raise transport_error(exc, what=what) from exc
    return _token_response(check_response(response, what=what))


@contextmanager
def _client_or(client: httpx.Client | None) -> Iterator[httpx.Client]:
    """The caller's shared client (left open), or a fresh one closed afterwards."""
    if client is not None:
        yield client
        return
    with http.client() as fresh:
        yield fresh


def register(
    *,
    registration_url: str,
    redirect_uris: list[str],
    scope: str,
    client_name: str,
    grant_types: list[str],
) -> Registration:
    """Register a confidential client (RFC 7591) and return its credentials.

    1. Describe the client (name, redirect URIs, grant types, secret in the POST body).
    2. POST it to the registration endpoint through the guarded client.
    3. Read the client id, secret and the authentication method the server chose.
    """
    metadata = {
        "client_name": client_name,
        "redirect_uris": redirect_uris,
        "grant_types": grant_types,
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_post",
    }
    if scope:
        metadata["scope"] = scope
    try:
        with http.client() as client:
            response = client.post(http.guarded(registration_url), json=metadata)
    except httpx.HTTPError as exc:
        raise transport_error(exc, what="client registration") from exc
    body = check_response(response, what="client registration")
    if not isinstance(body.get("client_id"), str):
        raise OAuthError("invalid_response", "registration response has no client_id")
    return Registration(
        client_id=str(body["client_id"]),
        client_secret=str(body.get("client_secret") or ""),
        token_endpoint_auth_method=str(
            body.get("token_endpoint_auth_method") or "client_secret_post"
        ),
    )


def revoke(*, revocation_url: str, auth: ClientAuth, token: str, token_type_hint: str) -> None:
    """Revoke one token (RFC 7009). The server answers 200 even for unknown tokens."""
    data = {"token": token, "token_type_hint": token_type_hint}
    basic = auth.apply(data)
    try:
        with http.client() as client:
            response = client.post(
                http.guarded(revocation_url), data=data, auth=basic or httpx.USE_CLIENT_DEFAULT
            )
    except httpx.HTTPError as exc:
        raise transport_error(exc, what="revocation") from exc
    if response.status_code != 200:
        check_response(response, what="revocation")
