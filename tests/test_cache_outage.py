"""The Redis cache backend with nothing listening: misses and no-ops, one warning.

The full scenario (a Redis stopped and started again under a running web app) is in
tests/faults/test_redis_outage.py; this is the backend on its own, fast.
"""

import logging
import socket

import pytest

from mcpcontrol.lib.cache import RedisCache


@pytest.fixture
def down_cache() -> RedisCache:
    with socket.socket() as sock:  # bound, then closed: a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return RedisCache(f"redis://127.0.0.1:{port}/0", {"OPTIONS": {"socket_connect_timeout": 1}})


def test_reads_miss_and_writes_are_dropped(down_cache):
    down_cache.set("k", "v")

    assert down_cache.get("k") is None
    assert down_cache.get("k", "fallback") == "fallback"
    assert down_cache.get_many(["k", "j"]) == {}
    assert down_cache.add("k", "v") is False
    assert down_cache.has_key("k") is False
    assert down_cache.touch("k") is False
    assert down_cache.delete("k") is False
    assert down_cache.get_or_set("k", "computed") == "computed"
    down_cache.set_many({"a": 1})
    down_cache.delete_many(["a"])
    down_cache.clear()


def test_incr_and_decr_behave_as_for_a_missing_key(down_cache):
    with pytest.raises(ValueError, match="not found"):
        down_cache.incr("counter")
    with pytest.raises(ValueError, match="not found"):
        down_cache.decr("counter")


def test_it_warns_once_per_outage_not_once_per_call(down_cache, caplog):
    with caplog.at_level(logging.WARNING, logger="mcpcontrol.lib.cache"):
        for _ in range(20):
            down_cache.get("k")

    assert [r.getMessage().split(" (")[0] for r in caplog.records] == ["cache unavailable"]
