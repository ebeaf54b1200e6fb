"""Services of the tokens app (seed 004's per-user token vault)."""

from tokens.services.store import (
    token_delete,
    token_renew,
    token_reveal,
    token_stats,
    token_store,
    token_update,
    tokens_cleanup_expired,
)

__all__ = [
    "token_delete",
    "token_renew",
    "token_reveal",
    "token_stats",
    "token_store",
    "token_update",
    "tokens_cleanup_expired",
]
