"""Services of the credentials app: the entry points its API, admin, tasks and port call."""

from credentials.services.connect import (
    oauth_authorization_complete,
    oauth_authorization_start,
    oauth_client_credentials_fetch,
    oauth_client_register,
    oauth_discover,
)
from credentials.services.grants import (
    grant_check_secret,
    grant_mark_reauth,
    grant_reveal,
    grant_set_secret,
    grant_store_tokens,
    grants_forget,
    oauth_disconnect,
)
from credentials.services.refresh import grant_ids_due, grants_refresh, grants_refresh_for
from credentials.services.resolve import resolve
from credentials.services.variables import variable_names, variables_set

__all__ = [
    "grant_check_secret",
    "grant_ids_due",
    "grant_mark_reauth",
    "grant_reveal",
    "grant_set_secret",
    "grant_store_tokens",
    "grants_forget",
    "grants_refresh",
    "grants_refresh_for",
    "oauth_authorization_complete",
    "oauth_authorization_start",
    "oauth_client_credentials_fetch",
    "oauth_client_register",
    "oauth_disconnect",
    "oauth_discover",
    "resolve",
    "variable_names",
    "variables_set",
]
