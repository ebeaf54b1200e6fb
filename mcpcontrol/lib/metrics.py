"""What our code counts for Prometheus: the counters and histograms, and the functions the
apps call to move them. No model here, so any app may import it; the scrape-time gauges and
/metrics live in mcpcontrol.metrics.

Counters live in prometheus_client's multiprocess files (PROMETHEUS_MULTIPROC_DIR, set in
settings): gunicorn workers and Celery pool children each write their own file.
"""

import time

from prometheus_client import Counter, Gauge, Histogram

HEALTH_CHECKS = Counter(
    "mcpcontrol_health_checks",
    "Health checks run, by outcome and transport.",
    ["outcome", "transport"],
)
HEALTH_CHECK_SECONDS = Histogram(
    "mcpcontrol_health_check_duration_seconds",
    "Wall time of one health check, by transport.",
    ["transport"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
TOKEN_REFRESHES = Counter(
    "mcpcontrol_token_refreshes",
    "Upstream OAuth token refreshes, by result.",
    ["result"],
)
# The gateway's tools/call (gateway.services.hotpath.ToolCallBuffer). `server` is the server's
# id ("" when the call named no routable tool): bounded by the registered servers, unlike
# tool names, which a caller picks and so never become a label.
GATEWAY_CALLS = Counter(
    "mcpcontrol_gateway_tool_calls",
    "Tool calls through the gateway, by server id and outcome.",
    ["server", "outcome"],
)
GATEWAY_CALL_SECONDS = Histogram(
    "mcpcontrol_gateway_tool_call_duration_seconds",
    "Wall time of a gateway tool call that was routed to its upstream, by server id.",
    ["server"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
# Refused before any upstream work: their near-zero durations would only blur the histogram.
_NOT_ROUTED = frozenset({"denied", "unknown_tool", "rate_limited"})
# "max" across processes: the newest sweep any worker finished.
LAST_SWEEP = Gauge(
    "mcpcontrol_health_sweep_last_success_timestamp_seconds",
    "Unix time the last health sweep finished.",
    multiprocess_mode="max",
)


def record_health_check(*, transport: str, outcome: str, seconds: float) -> None:
    HEALTH_CHECKS.labels(outcome=outcome, transport=transport).inc()
    HEALTH_CHECK_SECONDS.labels(transport=transport).observe(seconds)


def record_token_refresh(*, result: str) -> None:
    TOKEN_REFRESHES.labels(result=result).inc()


def record_sweep_finished() -> None:
    """Called by the health engine when a sweep has checked every due server."""
    LAST_SWEEP.set(time.time())


def record_gateway_call(*, server_id: int | None, outcome: str, seconds: float) -> None:
    server = "" if server_id is None else str(server_id)
    GATEWAY_CALLS.labels(server=server, outcome=outcome).inc()
    if outcome not in _NOT_ROUTED:
        GATEWAY_CALL_SECONDS.labels(server=server).observe(seconds)
