"""Services of the servers app: the only entry points other apps, views and tasks call."""

from servers.services.access import (
    server_can_change,
    server_check_change,
    server_check_create,
)
from servers.services.agents import (
    agent_create,
    agent_delete,
    agent_update,
    connection_delete,
    connection_set,
)
from servers.services.config import (
    health_cache_key,
    mcp_config_build,
    server_connection_state,
    server_is_recently_active,
    tool_names,
)
from servers.services.registry import (
    RUNTIME_FIELDS,
    VersionConflict,
    server_delete,
    server_register,
    server_set_enabled,
    server_snapshot,
    server_update,
)
from servers.services.stats import server_health_summary, server_stats

__all__ = [
    "RUNTIME_FIELDS",
    "VersionConflict",
    "agent_create",
    "agent_delete",
    "agent_update",
    "connection_delete",
    "connection_set",
    "health_cache_key",
    "mcp_config_build",
    "server_can_change",
    "server_check_change",
    "server_check_create",
    "server_connection_state",
    "server_delete",
    "server_health_summary",
    "server_is_recently_active",
    "server_register",
    "server_set_enabled",
    "server_snapshot",
    "server_stats",
    "server_update",
    "tool_names",
]
