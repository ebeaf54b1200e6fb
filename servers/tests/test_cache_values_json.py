"""Connection state in a Redis shared with other applications is plain JSON with the fields
docs/storage.md lists, written by a real health check against a real MCP peer into a real
redis-server on an ephemeral port."""

import json
import shutil
from collections.abc import Iterator

import pytest
import redis

from servers import services
from servers.models import McpServer
from tests.faults.conftest import RedisServer

pytestmark = pytest.mark.django_db

# docs/storage.md, "Cache values shared with other applications"
STATE_FIELDS = {"outcome", "message", "checked_at", "connected", "last_connected_at",
                "response_time_ms", "init_duration_ms", "protocol_version", "tool_count",
                "stderr"}  # fmt: skip
REPORT_FIELDS = {"server_id", "name", "outcome", "message", "response_time_ms", "tool_count",
                 "tools_changed", "status", "db_writes"}  # fmt: skip


@pytest.fixture
def shared_redis(settings) -> Iterator[redis.Redis]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = RedisServer()
    server.start()
    # The production configuration (settings.py with REDIS_URL), on this throw-away server.
    settings.CACHES = {"default": {"BACKEND": "mcpcontrol.lib.cache.RedisCache",
                                   "LOCATION": server.url, "KEY_PREFIX": "mcpcontrol"}}  # fmt: skip
    yield redis.Redis.from_url(server.url)
    server.stop()


def raw_json(client: redis.Redis, key: str) -> dict:
    raw = client.get(f"mcpcontrol:1:{key}")
    assert raw is not None, f"{key} not in Redis"
    return json.loads(raw)  # not a pickle: json.loads would fail on one


def test_a_servers_connection_state_is_documented_json(shared_redis, make_server, sdk_http_url):
    server = make_server(transport_type=McpServer.Transport.STREAMABLE_HTTP, url=sdk_http_url)

    services.server_check(server_id=server.id, report_as="req-1")

    state = raw_json(shared_redis, f"health:server:{server.id}")
    assert set(state) == STATE_FIELDS
    assert (state["outcome"], state["connected"], state["tool_count"]) == ("healthy", True, 3)
    assert state["checked_at"] == state["last_connected_at"]
    report = raw_json(shared_redis, "health:check-report:req-1")
    assert set(report) == REPORT_FIELDS
    # a number on SQL, the ObjectId's string on MongoDB (docs/storage.md)
    assert (str(report["server_id"]), report["outcome"]) == (str(server.id), "healthy")


def test_the_app_reads_back_the_json_state_it_wrote(shared_redis, make_server, sdk_http_url):
    server = make_server(transport_type=McpServer.Transport.STREAMABLE_HTTP, url=sdk_http_url)
    services.server_check(server_id=server.id)

    assert services.server_health_state(server=server)["outcome"] == "healthy"


def test_a_counter_stays_an_integer_incr_can_use(shared_redis):
    from django.core.cache import cache

    cache.set("counter", 1)
    cache.incr("counter")

    assert shared_redis.get("mcpcontrol:1:counter") == b"2"
    assert cache.get("counter") == 2
