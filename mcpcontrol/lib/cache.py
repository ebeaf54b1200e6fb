"""Django's Redis cache, degrading instead of failing while Redis is unreachable.

Nothing in the cache is the only copy of anything: health states are recomputed by the
next sweep, throttle counters start again. So during an outage a read is a miss, a write is
dropped, incr() is a missing key, and requests go on being served instead of answering 500.
Throttles then allow (their history reads as empty).

One warning when an outage starts and one line when it ends, per process, not one per
call. For RETRY_SECONDS after a failure, calls do not even try, so a request doing a few
cache calls does not pay a connection timeout for each of them.

Values are stored as JSON, not pickles (JSONSerializer): another application sharing the Redis
reads a server's connection state without Python, and a value written into it by someone else
can never run code here when read (docs/storage.md, "Cache values shared with other
applications").
"""

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

RETRY_SECONDS = 2.0
# BusyLoadingError (Redis loading its data after a restart) is a ConnectionError too.
OUTAGE_ERRORS = (RedisConnectionError, RedisTimeoutError)

T = TypeVar("T")


class JSONSerializer:
    """Redis values as compact UTF-8 JSON. An int stays a bare integer (as with Django's own
    serializer) so incr() works on it; it is valid JSON anyway. Every value this project caches
    is JSON already: dicts of str/number/bool/None, ISO 8601 times as strings, floats."""

    def dumps(self, obj: Any) -> bytes | int:
        if type(obj) is int:
            return obj
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()

    def loads(self, data: bytes) -> Any:
        return json.loads(data)


class _Outage:
    """Whether the Redis at one location is down, shared by every thread of the process."""

    def __init__(self, location: str) -> None:
        self.location = location
        self.lock = threading.Lock()
        self.down = False
        self.retry_at = 0.0

    def skipping(self) -> bool:
        return self.down and time.monotonic() < self.retry_at

    def failed(self, exc: Exception) -> None:
        with self.lock:
            self.retry_at = time.monotonic() + RETRY_SECONDS
            was_down, self.down = self.down, True
        if not was_down:
            logger.warning(
                "cache unavailable (%s: %s): serving without it until it returns",
                type(exc).__name__, exc,
            )  # fmt: skip

    def succeeded(self) -> None:
        if not self.down:  # the common case, without the lock
            return
        with self.lock:
            was_down, self.down = self.down, False
        if was_down:
            logger.warning("cache available again")


_outages: dict[str, _Outage] = {}
_outages_lock = threading.Lock()


def _outage_for(location: str) -> _Outage:
    with _outages_lock:
        return _outages.setdefault(location, _Outage(location))


class _DegradingClient(RedisCacheClient):
    """Each call of the client Django's RedisCache uses, with the outage behaviour."""

    def __init__(self, servers: list[str], *args: Any, **options: Any) -> None:
        super().__init__(servers, *args, **options)
        self._outage = _outage_for(",".join(servers))

    def _degrade(self, fallback: T, call: Callable[[], T]) -> T:
        if self._outage.skipping():
            return fallback
        try:
            result = call()
        except OUTAGE_ERRORS as exc:
            self._outage.failed(exc)
            return fallback
        self._outage.succeeded()
        return result

    def add(self, key: Any, value: Any, timeout: Any) -> bool:
        return self._degrade(False, lambda: super(_DegradingClient, self).add(key, value, timeout))

    def get(self, key: Any, default: Any) -> Any:
        return self._degrade(default, lambda: super(_DegradingClient, self).get(key, default))

    def set(self, key: Any, value: Any, timeout: Any) -> None:
        self._degrade(None, lambda: super(_DegradingClient, self).set(key, value, timeout))

    def touch(self, key: Any, timeout: Any) -> bool:
        return self._degrade(False, lambda: super(_DegradingClient, self).touch(key, timeout))

    def delete(self, key: Any) -> bool:
        return self._degrade(False, lambda: super(_DegradingClient, self).delete(key))

    def get_many(self, keys: Iterable[Any]) -> dict[Any, Any]:
        return self._degrade({}, lambda: super(_DegradingClient, self).get_many(keys))

    def has_key(self, key: Any) -> bool:
        return self._degrade(False, lambda: super(_DegradingClient, self).has_key(key))

    def incr(self, key: Any, delta: int) -> Any:
        missing = object()
        result = self._degrade(missing, lambda: super(_DegradingClient, self).incr(key, delta))
        if result is missing:
            raise ValueError(f"Key '{key}' not found (the cache is unavailable).")
        return result

    def set_many(self, data: Mapping[Any, Any], timeout: Any) -> None:
        self._degrade(None, lambda: super(_DegradingClient, self).set_many(data, timeout))

    def delete_many(self, keys: Iterable[Any]) -> None:
        self._degrade(None, lambda: super(_DegradingClient, self).delete_many(keys))

    def clear(self) -> bool:
        return self._degrade(False, lambda: super(_DegradingClient, self).clear())


class RedisCache(DjangoRedisCache):
    """settings.CACHES backend: Django's RedisCache that degrades during a Redis outage."""

    def __init__(self, server: str | list[str], params: dict[str, Any]) -> None:
        options = {"serializer": JSONSerializer, **params.get("OPTIONS", {})}
        super().__init__(server, {**params, "OPTIONS": options})
        self._class = _DegradingClient
