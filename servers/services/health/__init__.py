"""The health and tool discovery engine: claim servers, run MCP sessions, record what changed.

Every check is one real MCP session (see servers.mcp_client). The detailed outcome of the
latest check lives in the Django cache; the database is written only on meaningful events
(first or restored connection, an error, a status change, a new tool list), always with a
conditional UPDATE guarded by our claim so a stale row is never saved over a fresh one.
"""

from servers.services.health.checks import (
    health_check_report,
    server_check,
    servers_check,
    servers_check_all,
    servers_check_batch,
    servers_release_claims,
)
from servers.services.health.records import tools_diff
from servers.services.health.state import CheckResult, health_cache_key, server_health_state
from servers.services.health.sweep import (
    SweepPlan,
    health_sweep_interval,
    health_sweep_plan,
    sweep_batch_size,
)

__all__ = [
    "CheckResult",
    "SweepPlan",
    "health_cache_key",
    "health_check_report",
    "health_sweep_interval",
    "health_sweep_plan",
    "server_check",
    "server_health_state",
    "servers_check",
    "servers_check_all",
    "servers_check_batch",
    "servers_release_claims",
    "sweep_batch_size",
    "tools_diff",
]
