"""Connecting to an upstream OAuth server: discovery, client registration, sign-in, machine grants.

Discovery (RFC 9728 / RFC 8414) and dynamic client registration (RFC 7591) fill the server's
OAuth settings (through servers.services.server_oauth_configure); the authorization code
flow (PKCE S256, RFC 8707 resource) and the client credentials grant end in a Grant row.
A stdio server (seed 004's GitHub example) names its endpoints in its document: no discovery.
"""

import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.utils import timezone

from audit.models import AuditEvent
from credentials import oauth
from credentials.models import Grant, OAuthState
from credentials.services.client import (
    client_auth,
    client_credentials_request,
    redirect_uri,
    resource,
    token_request,
)
from credentials.services.grants import grant_store_tokens
from mcpcontrol.lib import secret_refs
from mcpcontrol.lib.fields import reveal
from servers.models import Agent, McpServer
from servers.services import server_oauth_configure

STATE_TTL = timedelta(minutes=10)


def _state_hash(state: str) -> str:
    return hmac.new(settings.TOKEN_PEPPER.encode(), state.encode(), hashlib.sha256).hexdigest()


# --- Discovery and registration --------------------------------------------------------


def oauth_discover(*, server: McpServer, actor: Any = None) -> McpServer:
    """Discover the server's authorization server and store its endpoints and metadata."""
    if not server.is_remote:
        raise oauth.OAuthError(
            "invalid_request", "a stdio server names its OAuth endpoints in its document"
        )
    found = oauth.discover(server.url)
    config = server.oauth_config
    # Ask for what the resource says it needs; an operator's explicit choice wins.
    scopes = found.resource_metadata.get("scopes_supported") or []
    discovered = {
        "issuer": found.issuer,
        "authorization_url": found.endpoint("authorization_endpoint"),
        "token_url": found.endpoint("token_endpoint"),
        "registration_endpoint": found.endpoint("registration_endpoint"),
        "revocation_endpoint": found.endpoint("revocation_endpoint"),
        "scope": config.scope or " ".join(str(s) for s in scopes),
        "code_challenge_methods_supported": list(
            found.metadata.get("code_challenge_methods_supported") or []
        ),
    }
    metadata = {
        "resource": found.resource,
        "authorization_server": found.metadata,
        "protected_resource": found.resource_metadata,
    }
    return server_oauth_configure(
        server=server, settings={**server.oauth, **discovered}, metadata=metadata, actor=actor,
        action=AuditEvent.Action.OAUTH_DISCOVERED, changes=discovered,
    )  # fmt: skip


def oauth_client_register(*, server: McpServer, actor: Any = None) -> bool:
    """Register a client (RFC 7591) unless one is configured. Return True if it registered."""
    config = server.oauth_config
    if config.client_id:
        return False  # pre-registered (operator-entered) or registered earlier
    if not config.registration_endpoint:
        raise oauth.OAuthError(
            "no_client",
            f"{server.name} has no OAuth client and its server offers no client registration",
        )
    registration = oauth.register(
        registration_url=config.registration_endpoint,
        redirect_uris=[redirect_uri(server)],
        scope=config.scope,
        client_name=f"mcpcontrol ({server.name})",
        grant_types=["client_credentials"]
        if config.machine
        else ["authorization_code", "refresh_token"],
    )
    chosen = {
        "client_id": registration.client_id,
        "token_endpoint_auth_method": registration.token_endpoint_auth_method,
    }
    server_oauth_configure(
        server=server, settings={**server.oauth, **chosen}, actor=actor,
        # The authorization server chose this secret: stored literal:-quoted where needed, so
        # it can never make us read one of our own files, variables or stores.
        client_secret=secret_refs.quote(registration.client_secret) or None,
        action=AuditEvent.Action.OAUTH_REGISTERED,
        changes={"auth_method": registration.token_endpoint_auth_method},
    )  # fmt: skip
    return True


def _ensure_client(*, server: McpServer, actor: Any) -> None:
    if not server.oauth_config.token_url:
        oauth_discover(server=server, actor=actor)
    oauth_client_register(server=server, actor=actor)


# --- Authorization code + PKCE ---------------------------------------------------------


def oauth_authorization_start(
    *, server: McpServer, user: Any, agent: Agent | None = None, return_url: str = ""
) -> str:
    """Begin the authorization code flow; return the URL to send the user's browser to.

    1. Check the mode: shared grants take no agent, per_agent grants need one.
    2. Discover and register a client when that has not happened yet.
    3. Store a single-use state with the PKCE verifier, then build the URL (S256, resource).
    """
    _authorization_check(server=server, agent=agent)
    _ensure_client(server=server, actor=user)
    methods = server.oauth_config.code_challenge_methods_supported
    if methods and "S256" not in methods and not server.oauth_config.skip_code_challenge_check:
        raise oauth.OAuthError(
            "pkce_unsupported", "the authorization server does not offer PKCE S256"
        )
    state, verifier = secrets.token_urlsafe(32), oauth.code_verifier()
    OAuthState.objects.create(
        state_hash=_state_hash(state), code_verifier=verifier, user=user, server=server,
        agent=agent, redirect_uri=redirect_uri(server), resource=resource(server),
        return_url=return_url, expires_at=timezone.now() + STATE_TTL,
    )  # fmt: skip
    return _authorization_url(server=server, state=state, verifier=verifier)


def _authorization_check(*, server: McpServer, agent: Agent | None) -> None:
    per_agent = server.credential_mode == McpServer.CredentialMode.PER_AGENT
    if per_agent != (agent is not None):
        need = "an agent_id (per_agent mode)" if per_agent else "no agent_id (shared mode)"
        raise oauth.OAuthError("invalid_request", f"{server.name} needs {need}")
    if server.oauth_config.machine:
        raise oauth.OAuthError(
            "invalid_request", f"{server.name} uses the client credentials grant"
        )
    if not server.is_remote and not server.oauth_config.authorization_url:
        raise oauth.OAuthError(
            "invalid_request", f"{server.name}: set oauth.authorization_url and oauth.token_url"
        )


def _authorization_url(*, server: McpServer, state: str, verifier: str) -> str:
    config = server.oauth_config
    params = {
        "response_type": "code",
        "client_id": client_auth(server).client_id,
        "redirect_uri": redirect_uri(server),
        "state": state,
        "code_challenge": oauth.code_challenge(verifier),
        "code_challenge_method": "S256",
        "resource": resource(server),  # RFC 8707: the token is audience-bound to this server
    }
    if config.scope:
        params["scope"] = config.scope
    separator = "&" if "?" in config.authorization_url else "?"
    return f"{config.authorization_url}{separator}{urlencode(params)}"


def _state_consume(*, state: str, user: Any) -> OAuthState:
    """Claim the state: unused, unexpired and the same user, in one conditional update."""
    now = timezone.now()
    consumed = OAuthState.objects.filter(
        state_hash=_state_hash(state), user=user, used_at=None, expires_at__gt=now
    ).update(used_at=now)  # a replay or a second tab finds used_at set and gets 0 rows
    if consumed != 1:
        raise oauth.OAuthError(
            "invalid_state", "The sign-in link is invalid, expired or already used."
        )
    return OAuthState.objects.select_related("server", "agent").get(state_hash=_state_hash(state))


def oauth_authorization_complete(
    *, state: str, code: str, user: Any, error: str = "", error_description: str = ""
) -> OAuthState:
    """Finish the flow at the callback: consume the state, exchange the code, store the grant.

    Raises OAuthError with the server's error (access_denied, invalid_grant, ...) or
    invalid_state; nothing is stored then. The grant belongs to the user who consented.
    """
    flow = _state_consume(state=state, user=user)
    if error:
        raise oauth.OAuthError(error, error_description or "The authorization server refused.")
    if not code:
        raise oauth.OAuthError("invalid_request", "The callback carried no authorization code.")
    response = token_request(
        flow.server,
        {
            "grant_type": "authorization_code", "code": code, "redirect_uri": flow.redirect_uri,
            "code_verifier": reveal(flow.code_verifier), "resource": flow.resource,
        },
    )  # fmt: skip
    grant_store_tokens(
        server=flow.server, agent=flow.agent, response=response, granted_by=user, actor=user
    )
    return flow


# --- Client credentials ----------------------------------------------------------------


def oauth_client_credentials_fetch(*, server: McpServer, actor: Any = None) -> Grant:
    """Get a machine-to-machine token (client credentials grant) and store it as shared."""
    _ensure_client(server=server, actor=actor)
    response = client_credentials_request(server)
    return grant_store_tokens(
        server=server, agent=None, response=response, granted_by=None, actor=actor
    )
