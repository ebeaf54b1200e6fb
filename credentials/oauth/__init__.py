"""The OAuth 2.1 protocol client for upstream MCP servers.

Pure protocol: discovery (RFC 9728, RFC 8414 / OpenID), dynamic client registration
(RFC 7591), PKCE (RFC 7636), token requests and revocation (RFC 7009). It knows nothing of
models; the credentials.services modules store what it returns. Every request goes through
mcpcontrol.lib.http, so the URL guard and timeouts apply.
"""

from credentials.oauth.client import (
    ClientAuth,
    Registration,
    TokenResponse,
    register,
    revoke,
    token_request,
)
from credentials.oauth.discovery import Discovery, discover
from credentials.oauth.errors import OAuthError, OAuthTransientError
from credentials.oauth.pkce import code_challenge, code_verifier

__all__ = [
    "ClientAuth",
    "Discovery",
    "OAuthError",
    "OAuthTransientError",
    "Registration",
    "TokenResponse",
    "code_challenge",
    "code_verifier",
    "discover",
    "register",
    "revoke",
    "token_request",
]
