"""Services of the servers app: the only entry points other apps, views and tasks call."""

from servers.services.access import (
    server_authorize_change,
    server_authorize_create,
    server_can_change,
)
from servers.services.agents import (
    agent_create,
    agent_delete,
    agent_update,
    connection_delete,
    connection_set,
)
from servers.services.config import (
    mcp_config_build,
    server_connection_state,
    server_is_recently_active,
    tool_names,
)
from servers.services.health import (
    CheckResult,
    health_cache_key,
    server_check,
    server_health_state,
    servers_check,
    servers_check_all,
    servers_check_batch,
    servers_sweep_enqueue,
    sweep_batch_size,
)
from servers.services.registry import (
    RUNTIME_FIELDS,
    VersionConflict,
    server_delete,
    server_register,
    server_secret_maps_resolve,
    server_set_enabled,
    server_snapshot,
    server_update,
)
from servers.services.seeding import (
    SeedOutcome,
    server_seed_one,
    servers_export,
    servers_seed,
)
from servers.services.stats import server_health_summary, server_stats

__all__ = [
    "RUNTIME_FIELDS",
    "CheckResult",
    "SeedOutcome",
    "VersionConflict",
    "agent_create",
    "agent_delete",
    "agent_update",
    "connection_delete",
    "connection_set",
    "health_cache_key",
    "mcp_config_build",
    "server_authorize_change",
    "server_authorize_create",
    "server_can_change",
    "server_check",
    "server_connection_state",
    "server_delete",
    "server_health_state",
    "server_health_summary",
    "server_is_recently_active",
    "server_register",
    "server_secret_maps_resolve",
    "server_seed_one",
    "server_set_enabled",
    "server_snapshot",
    "server_stats",
    "server_update",
    "servers_check",
    "servers_check_all",
    "servers_check_batch",
    "servers_export",
    "servers_seed",
    "servers_sweep_enqueue",
    "sweep_batch_size",
    "tool_names",
]
