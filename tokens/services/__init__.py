"""Services of the tokens app: the only entry points other apps call."""

from tokens.services.jwt import jwt_issue, jwt_pair_for
from tokens.services.oauth_connect import (
    oauth_authorization_complete,
    oauth_authorization_start,
    oauth_client_credentials_fetch,
    oauth_client_register,
    oauth_discover,
)
from tokens.services.oauth_refresh import (
    oauth_ensure_fresh,
    oauth_token_refresh,
    oauth_tokens_refresh_due,
)
from tokens.services.oauth_revoke import (
    oauth_credential_delete,
    oauth_disconnect,
    tokens_cleanup_expired,
)
from tokens.services.store import (
    token_delete,
    token_renew,
    token_reveal,
    token_stats,
    token_store,
)

__all__ = [
    "jwt_issue",
    "jwt_pair_for",
    "oauth_authorization_complete",
    "oauth_authorization_start",
    "oauth_client_credentials_fetch",
    "oauth_client_register",
    "oauth_credential_delete",
    "oauth_disconnect",
    "oauth_discover",
    "oauth_ensure_fresh",
    "oauth_token_refresh",
    "oauth_tokens_refresh_due",
    "token_delete",
    "token_renew",
    "token_reveal",
    "token_stats",
    "token_store",
    "tokens_cleanup_expired",
]
