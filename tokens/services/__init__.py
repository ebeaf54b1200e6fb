"""Services of the tokens app: the only entry points other apps call."""

from tokens.services.jwt import jwt_issue, jwt_pair_for
from tokens.services.oauth import oauth_ensure_fresh
from tokens.services.store import token_delete, token_renew, token_stats, token_store

__all__ = [
    "jwt_issue",
    "jwt_pair_for",
    "oauth_ensure_fresh",
    "token_delete",
    "token_renew",
    "token_stats",
    "token_store",
]
