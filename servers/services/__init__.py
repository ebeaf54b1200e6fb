"""Services of the servers app: the only entry points other apps, views and tasks call."""

from servers.services.health import (
    CheckResult,
    server_check,
    server_health_state,
    servers_check,
    servers_check_all,
)

__all__ = [
    "CheckResult",
    "server_check",
    "server_health_state",
    "servers_check",
    "servers_check_all",
]
