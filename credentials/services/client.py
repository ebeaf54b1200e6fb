"""How mcpcontrol appears to a server's authorization server: its client credentials, the
redirect URI it registered and the resource it asks tokens for (RFC 8707)."""

from django.conf import settings

from credentials import oauth
from mcpcontrol.lib import secret_refs
from mcpcontrol.lib.fields import reveal
from servers.models import McpServer


def redirect_uri(server: McpServer) -> str:
    return server.oauth_config.redirect_uri or f"{settings.MCPCONTROL_PUBLIC_URL}/oauth/callback"


def resource(server: McpServer) -> str:
    """The RFC 8707 resource: what the protected resource metadata names, else the URL."""
    return str((server.oauth_metadata or {}).get("resource") or server.url)


def client_auth(server: McpServer) -> oauth.ClientAuth:
    """The client's id and secret; the secret may be a reference, dereferenced now."""
    config = server.oauth_config
    if not config.client_id:
        raise oauth.OAuthError("no_client", f"{server.name} has no OAuth client registered")
    try:
        secret = secret_refs.deref(reveal(server.oauth_client_secret))
    except secret_refs.RefError as exc:
        # Transient: a refresh backs off and tries again; the grant itself is still good.
        raise oauth.OAuthTransientError("client_secret_unavailable", str(exc)) from None
    return oauth.ClientAuth(
        client_id=config.client_id, client_secret=secret,
        method=config.token_endpoint_auth_method or "client_secret_post",
    )  # fmt: skip


def token_request(
    server: McpServer, params: dict[str, str], **kwargs: object
) -> oauth.TokenResponse:
    """One request to the server's token endpoint, with its client and extra OAuth headers."""
    config = server.oauth_config
    if not config.token_url:
        raise oauth.OAuthError("no_token_url", f"{server.name} has no OAuth token URL")
    return oauth.token_request(
        token_url=config.token_url, auth=client_auth(server), params=params,
        headers=dict(server.oauth_headers or {}), **kwargs,  # type: ignore[arg-type]
    )  # fmt: skip


def client_credentials_request(server: McpServer, **kwargs: object) -> oauth.TokenResponse:
    """A machine-to-machine token (client credentials grant); a refresh simply asks again."""
    params = {"grant_type": "client_credentials", "scope": server.oauth_config.scope}
    params["resource"] = resource(server)
    return token_request(server, params, **kwargs)
