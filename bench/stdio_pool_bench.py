"""stdio tool-call latency through the gateway's upstream layer: a pooled process versus a
process per call (what the gateway did before the pool).

The upstream is tests/peers/echo_peer.py over stdio (a Python MCP server on the official
SDK). Both ways call `add` one call after another:
- per call: `gateway.services.upstream.upstream_call` starts the process, does the
  handshake, calls and stops it, every time;
- pooled: `pooled_call` over a `SessionPool` (MCPCONTROL_GATEWAY_STDIO_PROCESSES per key),
  its first call paying the start; then the same with `--concurrency` calls at once.
Prints p50/p99/mean latency of each and the speed-up. No database, no HTTP in front: this is
the upstream side only (bench/gateway_bench.py measures the endpoint).

    python bench/stdio_pool_bench.py [--calls 10] [--concurrency 8]
"""

import argparse
import statistics
import sys
import time
from typing import Any

from django_env import django_setup  # bench/ is sys.path[0] when run as a script

ROOT = django_setup("stdio-pool-bench")

import anyio  # noqa: E402

from gateway.services.sessions import SessionPool  # noqa: E402  (after Django's setup)
from gateway.services.upstream import Answer, pooled_call, upstream_call  # noqa: E402
from mcpcontrol.lib.http import SharedPool  # noqa: E402
from servers.mcp_client import Target  # noqa: E402

TARGET = Target(transport="stdio", command=sys.executable,
                args=[str(ROOT / "tests" / "peers" / "echo_peer.py"), "stdio"],
                init_timeout=60.0, timeout=60.0)  # fmt: skip
ARGS = {"a": 1, "b": 2}


def _row(label: str, latencies: list[float]) -> None:
    ms = sorted(x * 1000 for x in latencies)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    print(f"{label:<34} calls={len(ms):<4} p50={statistics.median(ms):8.1f} ms "
          f"p99={p99:8.1f} ms  mean={statistics.fmean(ms):8.1f} ms")  # fmt: skip


def _ok(answer: Answer) -> None:
    if answer.outcome != "ok":
        raise SystemExit(f"call failed: {answer.outcome} {answer.reason}")


async def _per_call(calls: int, http: SharedPool) -> list[float]:
    latencies = []
    for _ in range(calls):
        started = time.monotonic()
        _ok(await upstream_call(TARGET, tool="add", arguments=ARGS, pool=http))
        latencies.append(time.monotonic() - started)
    return latencies


async def _pooled(calls: int, concurrency: int, sessions: SessionPool) -> list[float]:
    latencies: list[float] = []

    async def lane(count: int) -> None:
        for _ in range(count):
            started = time.monotonic()
            _ok(await pooled_call(TARGET, server_id=1, tool="add", arguments=ARGS,
                                  sessions=sessions))  # fmt: skip
            latencies.append(time.monotonic() - started)

    async with anyio.create_task_group() as tg:
        for _ in range(concurrency):
            tg.start_soon(lane, calls // concurrency)
    return latencies


async def main(args: Any) -> None:
    http = SharedPool(max_connections=10)
    per_call = await _per_call(args.calls, http)
    async with anyio.create_task_group() as tg:
        sessions = SessionPool(tg=tg, http=http)
        started = time.monotonic()
        _ok(await pooled_call(TARGET, server_id=1, tool="add", arguments=ARGS,
                              sessions=sessions))  # fmt: skip
        first = time.monotonic() - started
        pooled = await _pooled(args.calls * 20, 1, sessions)
        wide = await _pooled(args.calls * 20, args.concurrency, sessions)
        tg.cancel_scope.cancel()  # the pooled processes end with the pool
    await http.close_pool()
    _row("process per call", per_call)
    print(f"{'pooled, first call (starts it)':<34} {first * 1000:.1f} ms")
    _row("pooled, one at a time", pooled)
    _row(f"pooled, {args.concurrency} at once", wide)
    speedup = statistics.median(per_call) / statistics.median(pooled)
    print(f"pooled p50 is {speedup:.0f}x faster than a process per call")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=10, help="calls with a process each")
    parser.add_argument("--concurrency", type=int, default=8)
    anyio.run(main, parser.parse_args())
