"""The OAuth 2.1 protocol client for upstream MCP servers.

Pure protocol: discovery (RFC 9728, RFC 8414 / OpenID), dynamic client registration
(RFC 7591), PKCE (RFC 7636), token requests and revocation (RFC 7009). It knows nothing of
models; the tokens.services.oauth_* modules store what it returns. Every request goes through
mcpcontrol.lib.http, so the URL guard and timeouts apply.
"""

from tokens.oauth.client import ClientAuth, Grant, Registration, register, revoke, token_request
from tokens.oauth.discovery import Discovery, discover
from tokens.oauth.errors import OAuthError, OAuthTransientError
from tokens.oauth.pkce import code_challenge, code_verifier

__all__ = [
    "ClientAuth",
    "Discovery",
    "Grant",
    "OAuthError",
    "OAuthTransientError",
    "Registration",
    "code_challenge",
    "code_verifier",
    "discover",
    "register",
    "revoke",
    "token_request",
]
