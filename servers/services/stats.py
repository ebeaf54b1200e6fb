"""Fleet-wide counts for the admin dashboard, computed by the database."""

from typing import Any

from django.db.models import Count, Func, IntegerField, Q, Sum, Value
from django.db.models.functions import Coalesce

from servers.models import McpServer


class JSONArrayLength(Func):
    """Length of a JSON array column; 0 for anything that is not an array."""

    function = "json_array_length"
    output_field = IntegerField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        # SQLite's json_array_length already answers 0 for a non-array.
        return super().as_sql(compiler, connection, **extra)

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        # jsonb_array_length raises on a non-array, hence the type guard.
        template = (
            "CASE WHEN jsonb_typeof(%(expressions)s) = 'array' "
            "THEN jsonb_array_length(%(expressions)s) ELSE 0 END"
        )
        return super().as_sql(compiler, connection, template=template, **extra)

    def as_mql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        # MongoDB (django-mongodb-backend compiles expressions through as_mql): $size raises
        # on a non-array, hence the $isArray guard.
        from django_mongodb_backend.query_utils import process_lhs

        array = process_lhs(self, compiler, connection, as_expr=True)
        return {"$cond": {"if": {"$isArray": array}, "then": {"$size": array}, "else": 0}}


# Seed 004's TransportConfig names: its "http" is streamable HTTP.
SEED_TRANSPORTS: dict[str, str] = {
    McpServer.Transport.STDIO: "stdio", McpServer.Transport.SSE: "sse",
    McpServer.Transport.WEBSOCKET: "websocket", McpServer.Transport.STREAMABLE_HTTP: "http",
}  # fmt: skip


def _counts(field: str, names: dict[str, str]) -> dict[str, int]:
    """Servers per value of `field`, under `names`: every name is there, 0 when none has it
    (a client reads servers_by_status["error"] without guarding against a missing key)."""
    counts = dict.fromkeys(names.values(), 0)
    for key, n in McpServer.objects.order_by().values_list(field).annotate(n=Count("id")):
        counts[names.get(key, key)] = n
    return counts


def server_stats() -> dict[str, Any]:
    """total_servers, per scope/status/transport and total_tools: four aggregate queries."""
    totals = McpServer.objects.aggregate(
        total=Count("id"),
        tools=Coalesce(Sum(JSONArrayLength("tools")), Value(0)),
    )
    return {
        "total_servers": totals["total"],
        "servers_by_scope": _counts("scope", {v: v for v in McpServer.Scope.values}),
        "servers_by_status": _counts("status", {v: v for v in McpServer.Status.values}),
        "servers_by_transport": _counts("transport_type", SEED_TRANSPORTS),
        "total_tools": totals["tools"],
    }


def server_health_summary() -> dict[str, int]:
    """total, healthy (enabled and active), unhealthy (enabled, not active), disabled."""
    enabled = Q(is_enabled=True)
    return McpServer.objects.aggregate(
        total=Count("id"),
        healthy=Count("id", filter=enabled & Q(status=McpServer.Status.ACTIVE)),
        unhealthy=Count("id", filter=enabled & ~Q(status=McpServer.Status.ACTIVE)),
        disabled=Count("id", filter=~enabled),
    )
