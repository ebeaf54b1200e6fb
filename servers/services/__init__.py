"""Services of the servers app: the only entry points other apps, views and tasks call."""

from servers.services.agents import (
    agent_create,
    agent_delete,
    agent_update,
    connection_delete,
    connection_set,
)
from servers.services.health import (
    CheckResult,
    server_check,
    server_health_state,
    servers_check,
    servers_check_all,
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
from servers.services.seeding import (
    SeedOutcome,
    server_seed_one,
    servers_export,
    servers_seed,
)

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
    "server_check",
    "server_delete",
    "server_health_state",
    "server_register",
    "server_seed_one",
    "server_set_enabled",
    "server_snapshot",
    "server_update",
    "servers_check",
    "servers_check_all",
    "servers_export",
    "servers_seed",
]
