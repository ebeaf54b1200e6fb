"""Services of the servers app: the only entry points other apps, views and tasks call."""

from servers.services.agents import (
    agent_create,
    agent_delete,
    agent_update,
    connection_delete,
    connection_set,
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

__all__ = [
    "RUNTIME_FIELDS",
    "VersionConflict",
    "agent_create",
    "agent_delete",
    "agent_update",
    "connection_delete",
    "connection_set",
    "server_delete",
    "server_register",
    "server_set_enabled",
    "server_snapshot",
    "server_update",
]
