"""The user's upstream credentials as seed 004's tokens: read from credentials.Grant, never
copied. A grant shows as one token (oauth_access for an OAuth grant, api_key otherwise),
id "grant-<id>", managed by its connection: it is listed and read here, and renewed or
dropped where it lives (the server's OAuth connection or credential input)."""

from typing import Any

from credentials.models import Grant
from mcpcontrol.lib.fields import is_unreadable
from mcpcontrol.lib.ids import is_id

PREFIX = "grant-"
TYPES = {
    Grant.Kind.OAUTH: "oauth_access",
    Grant.Kind.API_KEY: "api_key",
    Grant.Kind.BEARER: "api_key",
}


def identifier(grant: Grant) -> str:
    agent = f":agent:{grant.agent_id}" if grant.agent_id else ""
    return f"mcp:{grant.server.server_key}{agent}"


def entry(grant: Grant) -> dict[str, Any]:
    """A grant in TokenSerializer's shape."""
    return {
        "id": f"{PREFIX}{grant.pk}", "type": TYPES[Grant.Kind(grant.kind)],
        "identifier": identifier(grant), "email": "", "expires_at": grant.expires_at,
        "is_expired": grant.expired, "created_at": grant.created_at,
        "updated_at": grant.updated_at, "unreadable": is_unreadable(grant.secret),
        "metadata": {
            "server_id": str(grant.server_id), "server_name": grant.server.name,
            "agent_id": str(grant.agent_id) if grant.agent_id else None, "scope": grant.scope,
            "has_refresh_token": grant.refresh_secret is not None, "managed_by": "connection",
        },
    }  # fmt: skip


def entries(
    user: Any, *, type: str | None = None, ident: str | None = None
) -> list[dict[str, Any]]:
    """The user's grants as token entries, filtered like the token list."""
    grants = Grant.objects.granted_by(user).select_related("server")
    found = [entry(grant) for grant in grants]
    return [
        item
        for item in found
        if (type is None or item["type"] == type) and (ident is None or item["identifier"] == ident)
    ]


def grant_of(user: Any, token_id: str) -> Grant | None:
    """The user's grant named by a token id "grant-<id>", or None."""
    number = token_id.removeprefix(PREFIX)
    if not is_id(number):
        return None
    return Grant.objects.granted_by(user).select_related("server").filter(pk=number).first()
