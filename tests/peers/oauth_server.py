"""A real OAuth 2.1 authorization server and an MCP server protected by it, for tests.

The authorization server is the mcp SDK's (metadata, DCR, /authorize with PKCE, token with
refresh rotation, revocation) over a small in-memory provider. The SDK has no client
credentials grant, so the token route adds it in front of the SDK handler. The user agent
part is automatic: /authorize approves at once (or denies when told to) and redirects.

Fault injection is the real server misbehaving: `fail_status` makes the token endpoint
answer that status, `token_delay` makes it slow. PeerOptions changes where the peers publish
their metadata, so each discovery fallback meets a real server that lacks the other forms.
"""

import asyncio
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import uvicorn
from mcp.server.auth.handlers.token import TokenHandler
from mcp.server.auth.middleware.bearer_auth import RequireAuthMiddleware
from mcp.server.auth.middleware.client_auth import AuthenticationError, ClientAuthenticator
from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    RefreshToken,
    TokenError,
    construct_redirect_uri,
)
from mcp.server.auth.routes import create_auth_routes
from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions, RevocationOptions
from mcp.server.mcpserver import MCPServer
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from pydantic import AnyHttpUrl
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SCOPE = "mcp"
RFC8414_PATH = "/.well-known/oauth-authorization-server"
RFC9728_PATH = "/.well-known/oauth-protected-resource"


@dataclass(frozen=True)
class PeerOptions:
    """Where the peers publish their metadata. The defaults are the SDK's (every hint given).

    challenge_metadata: the 401's WWW-Authenticate names resource_metadata (RFC 9728 5.1).
    resource_metadata_at: "path" serves it at RFC9728_PATH + "/mcp" (RFC 9728 3.1), "root"
        only at RFC9728_PATH, as servers that predate the path-suffixed form do.
    server_metadata: "oauth" is RFC 8414 metadata only; "openid" is OpenID discovery only.
    issuer_path: a path on the issuer ("/tenant"); its endpoints then live under it.
    """

    access_ttl: int = 3600
    challenge_metadata: bool = True
    resource_metadata_at: Literal["path", "root"] = "path"
    server_metadata: Literal["oauth", "openid"] = "oauth"
    issuer_path: str = ""
    # A metadata document naming another issuer than the one it was fetched for (mix-up).
    advertised_issuer: str = ""


@dataclass
class MemoryProvider:
    """The authorization server's state. Tests read the counters and set the faults."""

    access_ttl: int = 3600
    clients: dict[str, OAuthClientInformationFull] = field(default_factory=dict)
    codes: dict[str, AuthorizationCode] = field(default_factory=dict)
    access: dict[str, AccessToken] = field(default_factory=dict)
    refresh: dict[str, RefreshToken] = field(default_factory=dict)
    token_calls: Counter[str] = field(default_factory=Counter)
    revoked: list[str] = field(default_factory=list)
    deny_next: bool = False
    fail_status: int | None = None
    token_delay: float = 0.0
    rotate_refresh: bool = True  # False: refresh answers carry no refresh_token (keep the old)
    presented: list[str] = field(default_factory=list)  # bearer tokens the MCP server was sent

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        return self.clients.get(client_id)

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        self.clients[client_info.client_id] = client_info

    def add_client(
        self, *, grant_types: list[str], redirect_uri: str | None = None
    ) -> tuple[str, str]:
        """A pre-registered (operator-entered) confidential client: its id and secret."""
        client_id, secret = f"pre-{secrets.token_hex(4)}", secrets.token_hex(16)
        self.clients[client_id] = OAuthClientInformationFull(
            client_id=client_id,
            client_secret=secret,
            redirect_uris=[redirect_uri] if redirect_uri else None,
            grant_types=grant_types,
            token_endpoint_auth_method="client_secret_basic",
            scope=SCOPE,
        )
        return client_id, secret

    async def authorize(
        self, client: OAuthClientInformationFull, params: AuthorizationParams
    ) -> str:
        redirect = str(params.redirect_uri)
        if self.deny_next:
            self.deny_next = False
            return construct_redirect_uri(
                redirect,
                error="access_denied",
                error_description="The user said no",
                state=params.state,
            )
        code = secrets.token_urlsafe(24)
        self.codes[code] = AuthorizationCode(
            code=code,
            scopes=params.scopes or [SCOPE],
            expires_at=time.time() + 300,
            client_id=client.client_id,
            code_challenge=params.code_challenge,
            redirect_uri=params.redirect_uri,
            redirect_uri_provided_explicitly=params.redirect_uri_provided_explicitly,
            resource=params.resource,
        )
        return construct_redirect_uri(redirect, code=code, state=params.state)

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> AuthorizationCode | None:
        return self.codes.get(authorization_code)

    def issue(
        self, *, client_id: str, scopes: list[str], resource: str | None, refresh: bool
    ) -> OAuthToken:
        access = secrets.token_urlsafe(24)
        expires_at = int(time.time()) + self.access_ttl
        self.access[access] = AccessToken(
            token=access,
            client_id=client_id,
            scopes=scopes,
            expires_at=expires_at,
            resource=resource,
        )
        refresh_token = None
        if refresh:
            refresh_token = secrets.token_urlsafe(24)
            self.refresh[refresh_token] = RefreshToken(
                token=refresh_token, client_id=client_id, scopes=scopes, resource=resource
            )
        return OAuthToken(
            access_token=access,
            token_type="Bearer",
            expires_in=self.access_ttl,
            scope=" ".join(scopes),
            refresh_token=refresh_token,
        )

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: AuthorizationCode
    ) -> OAuthToken:
        if self.codes.pop(authorization_code.code, None) is None:
            raise TokenError("invalid_grant", "authorization code already used")
        code = authorization_code
        return self.issue(
            client_id=client.client_id, scopes=code.scopes, resource=code.resource, refresh=True
        )

    async def load_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: str
    ) -> RefreshToken | None:
        return self.refresh.get(refresh_token)

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: RefreshToken, scopes: list[str]
    ) -> OAuthToken:
        if not self.rotate_refresh:
            return self.issue(
                client_id=client.client_id,
                scopes=scopes,
                resource=refresh_token.resource,
                refresh=False,
            )
        # Rotation: the old refresh token dies with this exchange; reusing it is invalid_grant.
        if self.refresh.pop(refresh_token.token, None) is None:
            raise TokenError("invalid_grant", "refresh token already used")
        return self.issue(
            client_id=client.client_id, scopes=scopes, resource=refresh_token.resource, refresh=True
        )

    async def load_access_token(self, token: str) -> AccessToken | None:
        found = self.access.get(token)
        if found is None or (found.expires_at and found.expires_at < time.time()):
            return None
        return found

    async def revoke_token(self, token: AccessToken | RefreshToken) -> None:
        self.revoked.append(token.token)
        self.access.pop(token.token, None)
        self.refresh.pop(token.token, None)


def _token_route(provider: MemoryProvider) -> Route:
    authenticator = ClientAuthenticator(provider)
    sdk_handler = TokenHandler(provider, authenticator)

    async def token(request: Request) -> Response:
        form = await request.form()  # Starlette caches it, so the SDK handler reads it again
        grant_type = str(form.get("grant_type"))
        provider.token_calls[grant_type] += 1
        if provider.token_delay:
            await asyncio.sleep(provider.token_delay)
        if provider.fail_status:
            return JSONResponse(
                {"error": "temporarily_unavailable"}, status_code=provider.fail_status
            )
        if grant_type != "client_credentials":
            return await sdk_handler.handle(request)
        try:
            client = await authenticator.authenticate_request(request)
        except AuthenticationError as exc:
            return JSONResponse({"error": "invalid_client", "error_description": exc.message}, 401)
        if "client_credentials" not in client.grant_types:
            return JSONResponse({"error": "unauthorized_client"}, status_code=400)
        resource = form.get("resource")
        issued = provider.issue(
            client_id=client.client_id,
            scopes=[SCOPE],
            resource=str(resource) if resource else None,
            refresh=False,
        )
        return JSONResponse(
            issued.model_dump(exclude_none=True), headers={"Cache-Control": "no-store"}
        )

    return Route("/token", endpoint=token, methods=["POST"])


def _metadata_path(issuer: str, kind: str) -> str:
    path = urlsplit(issuer).path.rstrip("/")
    if kind == "openid":
        return f"{path}/.well-known/openid-configuration"  # OpenID Connect Discovery 4: appended
    return f"{RFC8414_PATH}{path}"  # RFC 8414 3.1: inserted between host and path


def _advertising(issuer: str, advertised: str) -> Any:
    """A metadata endpoint whose document names `advertised` instead of its own issuer."""

    async def metadata(request: Request) -> Response:
        return JSONResponse({
            "issuer": advertised,
            "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token",
            "response_types_supported": ["code"],
        })  # fmt: skip

    return metadata


def authorization_app(
    provider: MemoryProvider,
    issuer: str,
    *,
    server_metadata: str = "oauth",
    advertised_issuer: str = "",
) -> Starlette:
    """The SDK's routes, with the metadata moved to where `server_metadata` says and the
    endpoints mounted under the issuer's path (the SDK assumes an issuer without one)."""
    routes = create_auth_routes(
        provider,
        AnyHttpUrl(issuer),
        client_registration_options=ClientRegistrationOptions(enabled=True, valid_scopes=[SCOPE]),
        revocation_options=RevocationOptions(enabled=True),
    )
    sdk_metadata = next(r for r in routes if isinstance(r, Route) and r.path == RFC8414_PATH)
    endpoint = sdk_metadata.endpoint
    if advertised_issuer:
        endpoint = _advertising(issuer, advertised_issuer)
    metadata = Route(_metadata_path(issuer, server_metadata), endpoint, methods=["GET"])
    endpoints = [_token_route(provider), *(r for r in routes if r is not sdk_metadata)]
    path = urlsplit(issuer).path.rstrip("/")
    mounted: list[BaseRoute] = [Mount(path, routes=endpoints)] if path else list(endpoints)
    return Starlette(routes=[metadata, *mounted])


class _Verifier:
    def __init__(self, provider: MemoryProvider) -> None:
        self.provider = provider

    async def verify_token(self, token: str) -> AccessToken | None:
        self.provider.presented.append(token)
        return await self.provider.load_access_token(token)


def protected_mcp_app(
    provider: MemoryProvider, issuer: str, base_url: str, *, options: PeerOptions = PeerOptions()
) -> Starlette:
    """An MCP server (streamable HTTP at /mcp) that accepts only the provider's tokens."""
    server = MCPServer(
        name="protected",
        token_verifier=_Verifier(provider),
        auth=AuthSettings(
            issuer_url=AnyHttpUrl(issuer),
            resource_server_url=AnyHttpUrl(f"{base_url}/mcp"),
            required_scopes=[SCOPE],
            validate_token_resource=True,  # the token must name this server (RFC 8707)
        ),
    )

    @server.tool()
    def echo(text: str) -> str:
        """Echo the text back."""
        return text

    app = server.streamable_http_app(stateless_http=True, json_response=True)
    routes = app.router.routes
    for index, route in enumerate(routes):
        if not isinstance(route, Route):
            continue
        if isinstance(route.endpoint, RequireAuthMiddleware) and not options.challenge_metadata:
            route.endpoint.resource_metadata_url = None  # a bare `Bearer error=...` challenge
        if route.path == f"{RFC9728_PATH}/mcp" and options.resource_metadata_at == "root":
            routes[index] = Route(RFC9728_PATH, route.endpoint, methods=["GET"])
    return app


def _recording(app: ASGIApp, hits: list[tuple[str, str, int]]) -> ASGIApp:
    """Note (method, URL, status) of every request, so tests see which fallback was taken."""

    async def recorded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await app(scope, receive, send)
        host, port = scope["server"]
        url = f"http://{host}:{port}{scope['path']}"

        async def send_noting_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                hits.append((scope["method"], url, message["status"]))
            await send(message)

        await app(scope, receive, send_noting_status)

    return recorded


def _bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def _serve(app: Any, sock: socket.socket) -> Iterator[None]:
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("peer server did not start")
        time.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()


@dataclass
class OAuthPeers:
    provider: MemoryProvider
    issuer: str  # with options.issuer_path appended
    mcp_url: str
    as_origin: str = ""
    hits: list[tuple[str, str, int]] = field(default_factory=list)  # (method, URL, status)


@contextmanager
def run_oauth_peers(options: PeerOptions = PeerOptions()) -> Iterator[OAuthPeers]:
    """Start the authorization server and the protected MCP server on ephemeral ports."""
    as_sock, rs_sock = _bound_socket(), _bound_socket()
    as_origin = f"http://127.0.0.1:{as_sock.getsockname()[1]}"
    issuer = f"{as_origin}{options.issuer_path}"
    rs_base = f"http://127.0.0.1:{rs_sock.getsockname()[1]}"
    peers = OAuthPeers(
        provider=MemoryProvider(access_ttl=options.access_ttl),
        issuer=issuer,
        mcp_url=f"{rs_base}/mcp",
        as_origin=as_origin,
    )
    as_app = authorization_app(
        peers.provider,
        issuer,
        server_metadata=options.server_metadata,
        advertised_issuer=options.advertised_issuer,
    )
    rs_app = protected_mcp_app(peers.provider, issuer, rs_base, options=options)
    with (
        _serve(_recording(as_app, peers.hits), as_sock),
        _serve(_recording(rs_app, peers.hits), rs_sock),
    ):
        yield peers
