"""Connecting to an upstream OAuth server: discovery, client registration, sign-in, machine grants.

Discovery (RFC 9728 / RFC 8414) and dynamic client registration (RFC 7591) fill the server's
oauth_* fields; the authorization code flow (PKCE S256, RFC 8707 resource) and the client
credentials grant end in oauth_grants._grant_store.
"""

import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_event_create
from mcpcontrol.lib.fields import reveal
from servers.models import Agent, AgentConnection, McpServer
from tokens import oauth
from tokens.models import OAuthState
from tokens.services.oauth_grants import (
    _client_auth,
    _client_credentials_grant,
    _grant_store,
    _redirect_uri,
    _resource,
)

STATE_TTL = timedelta(minutes=10)


def _state_hash(state: str) -> str:
    return hmac.new(settings.TOKEN_PEPPER.encode(), state.encode(), hashlib.sha256).hexdigest()


# --- Discovery and registration --------------------------------------------------------


def oauth_discover(*, server: McpServer, actor: Any = None) -> McpServer:
    """Discover the server's authorization server and store its endpoints and metadata."""
    found = oauth.discover(server.url)
    server.oauth_issuer = found.issuer
    server.oauth_authorization_url = found.endpoint("authorization_endpoint")
    server.oauth_token_url = found.endpoint("token_endpoint")
    server.oauth_registration_url = found.endpoint("registration_endpoint")
    server.oauth_revocation_url = found.endpoint("revocation_endpoint")
    # Ask for what the resource says it needs; an operator's explicit choice wins.
    scopes = found.resource_metadata.get("scopes_supported") or []
    server.oauth_scopes = server.oauth_scopes or " ".join(str(s) for s in scopes)
    server.oauth_pkce_methods = list(found.metadata.get("code_challenge_methods_supported") or [])
    server.oauth_metadata = {
        "resource": found.resource,
        "authorization_server": found.metadata,
        "protected_resource": found.resource_metadata,
    }
    fields = [
        "oauth_issuer", "oauth_authorization_url", "oauth_token_url", "oauth_registration_url",
        "oauth_revocation_url", "oauth_scopes", "oauth_pkce_methods", "oauth_metadata",
    ]  # fmt: skip
    with transaction.atomic():
        server.save(update_fields=[*fields, "updated_at"])
        changes = {f: getattr(server, f) for f in fields[:6]}
        audit_event_create(
            action=AuditEvent.Action.OAUTH_DISCOVERED, target=server, actor=actor, changes=changes
        )
    return server


def oauth_client_register(*, server: McpServer, actor: Any = None) -> bool:
    """Register a client (RFC 7591) unless one is configured. Return True if it registered."""
    if server.oauth_client_id is not None:
        return False  # pre-registered (operator-entered) or registered earlier
    if not server.oauth_registration_url:
        raise oauth.OAuthError(
            "no_client",
            f"{server.name} has no OAuth client and its server offers no client registration",
        )
    machine = server.oauth_grant_type == McpServer.OAuthGrant.CLIENT_CREDENTIALS
    registration = oauth.register(
        registration_url=server.oauth_registration_url,
        redirect_uris=[_redirect_uri(server)],
        scope=server.oauth_scopes,
        client_name=f"mcpcontrol ({server.name})",
        grant_types=["client_credentials"] if machine else ["authorization_code", "refresh_token"],
    )
    server.oauth_client_id = registration.client_id
    server.oauth_client_secret = registration.client_secret or None
    server.oauth_token_endpoint_auth_method = registration.token_endpoint_auth_method
    fields = ["oauth_client_id", "oauth_client_secret", "oauth_token_endpoint_auth_method"]
    with transaction.atomic():
        server.save(update_fields=[*fields, "updated_at"])
        changes = {
            "oauth_client_id": {"new": "[redacted]"},
            "auth_method": registration.token_endpoint_auth_method,
        }
        audit_event_create(
            action=AuditEvent.Action.OAUTH_REGISTERED, target=server, actor=actor, changes=changes
        )
    return True


def _ensure_client(*, server: McpServer, actor: Any) -> None:
    if not server.oauth_token_url:
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
    if server.oauth_pkce_methods and "S256" not in server.oauth_pkce_methods:
        raise oauth.OAuthError(
            "pkce_unsupported", "the authorization server does not offer PKCE S256"
        )
    state, verifier = secrets.token_urlsafe(32), oauth.code_verifier()
    OAuthState.objects.create(
        state_hash=_state_hash(state),
        code_verifier=verifier,
        user=user,
        server=server,
        agent=agent,
        redirect_uri=_redirect_uri(server),
        resource=_resource(server),
        return_url=return_url,
        expires_at=timezone.now() + STATE_TTL,
    )
    return _authorization_url(server=server, state=state, verifier=verifier)


def _authorization_check(*, server: McpServer, agent: Agent | None) -> None:
    per_agent = server.credential_mode == McpServer.CredentialMode.PER_AGENT
    if per_agent != (agent is not None):
        need = "an agent_id (per_agent mode)" if per_agent else "no agent_id (shared mode)"
        raise oauth.OAuthError("invalid_request", f"{server.name} needs {need}")
    if server.oauth_grant_type != McpServer.OAuthGrant.AUTHORIZATION_CODE:
        raise oauth.OAuthError(
            "invalid_request", f"{server.name} uses the client credentials grant"
        )


def _authorization_url(*, server: McpServer, state: str, verifier: str) -> str:
    params = {
        "response_type": "code",
        "client_id": _client_auth(server).client_id,
        "redirect_uri": _redirect_uri(server),
        "state": state,
        "code_challenge": oauth.code_challenge(verifier),
        "code_challenge_method": "S256",
        "resource": _resource(server),  # RFC 8707: the token is audience-bound to this server
    }
    if server.oauth_scopes:
        params["scope"] = server.oauth_scopes
    separator = "&" if "?" in server.oauth_authorization_url else "?"
    return f"{server.oauth_authorization_url}{separator}{urlencode(params)}"


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
    invalid_state; nothing is stored then.
    """
    flow = _state_consume(state=state, user=user)
    if error:
        raise oauth.OAuthError(error, error_description or "The authorization server refused.")
    if not code:
        raise oauth.OAuthError("invalid_request", "The callback carried no authorization code.")
    server = flow.server
    grant = oauth.token_request(
        token_url=server.oauth_token_url,
        auth=_client_auth(server),
        params={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": flow.redirect_uri,
            "code_verifier": reveal(flow.code_verifier),
            "resource": flow.resource,
        },
    )
    connection = None
    if flow.agent is not None:
        connection, _ = AgentConnection.objects.get_or_create(agent=flow.agent, server=server)
    _grant_store(server=server, connection=connection, grant=grant, owner=user, actor=user)
    return flow


# --- Client credentials ----------------------------------------------------------------


def oauth_client_credentials_fetch(*, server: McpServer, actor: Any = None) -> None:
    """Get a machine-to-machine token (client credentials grant) and store it as shared."""
    _ensure_client(server=server, actor=actor)
    grant = _client_credentials_grant(server)
    _grant_store(server=server, connection=None, grant=grant, owner=None, actor=actor)
