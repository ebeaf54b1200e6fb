"""Turning a server's stored credentials into the headers a client sends.

One function serves the health engine and the client-config export, so both resolve
credentials the same way: per-agent credentials first in per_agent mode, shared otherwise,
and an OAuth grant is refreshed before use when it has expired and can be refreshed.
"""

from servers.models import Agent, AgentConnection, McpServer


class MissingCredential(Exception):
    """No usable credential for this server (and agent): the caller reports auth_required."""


def _connection_for(server: McpServer, agent: Agent | None) -> AgentConnection:
    if agent is None:
        raise MissingCredential(f"{server.name} uses per-agent credentials and no agent was given")
    # Through agent.connections so a caller resolving many servers (the client-config export)
    # can prefetch them once instead of one query per server.
    connection = next((c for c in agent.connections.all() if c.server_id == server.pk), None)
    if connection is None or connection.access_token is None:
        raise MissingCredential(f"agent {agent.name} has no credential for {server.name}")
    return connection


def _secret_for(server: McpServer, agent: Agent | None) -> str:
    """The bearer token, API key or OAuth access token to send (decrypted)."""
    from tokens.services import oauth_ensure_fresh

    if server.credential_mode == McpServer.CredentialMode.PER_AGENT:
        connection = _connection_for(server, agent)
        if server.auth_type == McpServer.AuthType.OAUTH:
            connection = oauth_ensure_fresh(server=server, connection=connection) or connection
            if connection.needs_reauth:
                raise MissingCredential(
                    f"agent {agent}'s grant for {server.name} needs re-authorization"
                )
        return connection.access_token.reveal()  # type: ignore[union-attr]
    if server.auth_type == McpServer.AuthType.OAUTH:
        oauth_ensure_fresh(server=server, connection=None)
        if server.oauth_access_token is None or server.oauth_needs_reauth:
            raise MissingCredential(f"{server.name} has no OAuth grant yet: connect it first")
        return server.oauth_access_token.reveal()
    if server.auth_secret is None:
        raise MissingCredential(f"{server.name} has no {server.auth_type} credential stored")
    return server.auth_secret.reveal()


def credential_headers(*, server: McpServer, agent: Agent | None = None) -> dict[str, str]:
    """Headers to send upstream: the server's custom headers plus its credential.

    Raises MissingCredential when the auth type needs a credential that is not there.
    """
    headers = dict(server.headers or {})
    if server.auth_type == McpServer.AuthType.NONE:
        return headers
    secret = _secret_for(server, agent)
    if server.auth_type == McpServer.AuthType.API_KEY:
        headers[server.header_name] = f"{server.prefix}{secret}"
    else:  # bearer and oauth
        headers["Authorization"] = f"Bearer {secret}"
    return headers
