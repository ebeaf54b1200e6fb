"""OAuth 2.1 for upstream MCP servers (placeholder until the OAuth work lands)."""

from typing import Any


def oauth_ensure_fresh(*, server: Any, connection: Any | None) -> Any | None:
    """Refresh the grant first if it has expired and can be refreshed; return the fresh row.

    connection=None means the server's shared grant. Returns the reloaded connection (or
    server) when a refresh happened, else None.
    """
    return None
