"""The gateway's call metrics on /metrics: a counter by server and outcome and a duration
histogram by server, moved where ToolCall rows are buffered, summed across processes
(prometheus_client's multiprocess files, as in the ASGI workers)."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.services.hotpath import ToolCallBuffer
from tests.factories import AgentFactory, McpServerFactory
from tests.test_metrics import scrape

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def test_calls_are_counted_by_server_and_outcome_and_timed(client):
    server, agent = McpServerFactory(), AgentFactory()
    label = str(server.pk)
    calls = ("mcpcontrol_gateway_tool_calls_total", (("outcome", "ok"), ("server", label)))
    denied = ("mcpcontrol_gateway_tool_calls_total", (("outcome", "denied"), ("server", "")))
    timed = ("mcpcontrol_gateway_tool_call_duration_seconds_count", (("server", label),))
    before = scrape(client)
    buffer = ToolCallBuffer()
    for server_id, outcome in ((server.pk, "ok"), (server.pk, "ok"), (None, "denied")):
        buffer.add(agent_id=agent.pk, server_id=server_id, tool="t", started=time.monotonic(),
                   outcome=outcome, argument_bytes=0)  # fmt: skip

    after = scrape(client)

    assert after[calls] - before.get(calls, 0) == 2
    assert after[denied] - before.get(denied, 0) == 1
    # Only calls routed to an upstream are timed: refusals would blur the latencies.
    assert after[timed] - before.get(timed, 0) == 2


def test_calls_counted_in_another_process_are_scraped_here(client, settings):
    """An ASGI worker is another process than the one answering /metrics: its counts reach
    the scrape through the shared multiprocess folder."""
    server = McpServerFactory()
    key = (
        "mcpcontrol_gateway_tool_calls_total",
        (("outcome", "timeout"), ("server", str(server.pk))),
    )
    before = scrape(client).get(key, 0)
    code = ("from mcpcontrol.lib.metrics import record_gateway_call\n"
            f"for _ in range(3): record_gateway_call(server_id='{server.pk}', outcome='timeout', "
            "seconds=1.5)")  # fmt: skip
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(settings.PROMETHEUS_MULTIPROC_DIR)}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60, cwd=ROOT)

    assert scrape(client)[key] - before == 3
