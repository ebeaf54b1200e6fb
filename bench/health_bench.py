"""Health engine throughput: N servers on a few local streamable HTTP MCP peers.

    python bench/health_bench.py [--servers 500] [--peers 4] [--concurrency 50]

Uses DATABASE_URL when set, else a throwaway SQLite file. Reports checks per second, wall
time, wall time against the ideal N x median(single check) / concurrency, and DB writes per
check (counted with connection.execute_wrapper), for a cold sweep (every tool list is new)
and a steady one (nothing changed).
"""

import argparse
import statistics
import subprocess
import sys
import time

from django_env import django_setup  # bench/ is sys.path[0] when run as a script

ROOT = django_setup("bench")

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from servers import services  # noqa: E402
from servers.models import McpServer  # noqa: E402


def start_peers(count: int) -> tuple[list[subprocess.Popen[str]], list[int]]:
    procs, ports = [], []
    for _ in range(count):
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "tests/peers/sdk_peer.py"), "streamable-http",
             "--stateless", "--page-size", "50"],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert proc.stdout is not None
        procs.append(proc)
        ports.append(int(proc.stdout.readline().split()[1]))
    return procs, ports


class WriteCounter:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        if not sql.lstrip().upper().startswith("SELECT"):
            self.count += 1
        return execute(sql, params, many, context)


def register(n: int, ports: list[int]) -> list[int]:
    McpServer.objects.filter(name__startswith="bench-").delete()
    McpServer.objects.bulk_create(
        McpServer(
            name=f"bench-{i}", alias=f"bench-{i}",
            url=f"http://127.0.0.1:{ports[i % len(ports)]}/mcp",
            transport_type=McpServer.Transport.STREAMABLE_HTTP, timeout_ms=10000,
        )
        for i in range(n)
    )  # fmt: skip
    return list(McpServer.objects.filter(name__startswith="bench-").values_list("id", flat=True))


def median_single(ids: list[int], samples: int = 15) -> float:
    times = []
    for server_id in ids[:samples]:
        started = time.perf_counter()
        services.server_check(server_id=server_id)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def sweep(label: str, n: int, concurrency: int, single: float) -> None:
    counter = WriteCounter()
    with connection.execute_wrapper(counter):
        started = time.perf_counter()
        summary = services.servers_check_all(concurrency=concurrency)
        wall = time.perf_counter() - started
    ideal = n * single / concurrency
    print(
        f"{label:7} checks={summary['checked']} outcomes={summary['outcomes']} wall={wall:.2f}s "
        f"rate={summary['checked'] / wall:.1f}/s ideal={ideal:.2f}s wall/ideal={wall / ideal:.2f} "
        f"db_writes={counter.count} ({counter.count / max(summary['checked'], 1):.3f}/check)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--servers", type=int, default=500)
    parser.add_argument("--peers", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    procs, ports = start_peers(args.peers)
    try:
        ids = register(args.servers, ports)
        single = median_single(ids)
        McpServer.objects.filter(id__in=ids).update(tools=[], last_connected_at=None)
        print(f"servers={args.servers} peers={args.peers} concurrency={args.concurrency} "
              f"db={connection.vendor} median_single_check={single * 1000:.1f}ms")  # fmt: skip
        sweep("cold", args.servers, args.concurrency, single)
        sweep("steady", args.servers, args.concurrency, single)
    finally:
        McpServer.objects.filter(name__startswith="bench-").delete()
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
