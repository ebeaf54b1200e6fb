"""The servers app's models: McpServer (servers.models.server), Agent and AgentConnection
(servers.models.agents), CheckResult (servers.models.history) and the OAuth settings view
of a server (servers.models.oauth)."""

from servers.models.agents import Agent, AgentConnection, AgentQuerySet
from servers.models.history import CheckResult, CheckResultQuerySet
from servers.models.oauth import OAuthSettings
from servers.models.server import (
    ALIAS_RE,
    MAX_TIMEOUT_MS,
    RECENTLY_ACTIVE,
    VARIABLE_RE,
    McpServer,
    McpServerQuerySet,
    alias_validator,
    default_alias,
    sanitize_name,
)

__all__ = [
    "ALIAS_RE",
    "MAX_TIMEOUT_MS",
    "RECENTLY_ACTIVE",
    "VARIABLE_RE",
    "Agent",
    "AgentConnection",
    "AgentQuerySet",
    "CheckResult",
    "CheckResultQuerySet",
    "McpServer",
    "McpServerQuerySet",
    "OAuthSettings",
    "alias_validator",
    "default_alias",
    "sanitize_name",
]
