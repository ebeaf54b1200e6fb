"""Tool calls through the MCP gateway versus straight to the upstream.

Seeds a temporary SQLite database (one user, one agent with a key, one streamable HTTP
server: tests/peers/echo_peer.py), serves mcpcontrol.asgi with gunicorn and one uvicorn
worker on 127.0.0.1, and times `add` calls with the SDK's client at concurrency 1 and 50,
once through /mcp/agents/<id> and once directly against the peer. Prints calls/s and
p50/p99 latency of each, and the gateway's added p50/p99.

    python bench/gateway_bench.py [--calls 400] [--short]     (--short or BENCH_SHORT=1: CI)
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CONCURRENCY = (1, 50)


def _environment(base: Path) -> dict[str, str]:
    from cryptography.fernet import Fernet

    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mcpcontrol.settings",
        "DJANGO_SECRET_KEY": "bench-secret-key-" + "x" * 40,
        "MCPCONTROL_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "DATABASE_URL": f"sqlite:///{base / 'db.sqlite3'}",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SECURE_COOKIES": "0",
        "MCPCONTROL_ALLOW_PRIVATE_UPSTREAMS": "1",
        "MCPCONTROL_RUN_DIR": str(base / "run"),
        "MCPCONTROL_STATIC_ROOT": str(base / "static"),
        "WEB_CONCURRENCY": "1",
        "MCPCONTROL_LOG_LEVEL": "WARNING",
    }


def _seed(peer_url: str) -> tuple[int, str]:
    """Migrate and create the agent, its key and the server; return (agent id, key)."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from gateway.services import agent_key_create
    from servers.models import Agent, McpServer

    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user("bench", password="bench-password")
    agent = Agent.objects.create(name="bench", owner=user)
    McpServer.objects.create(
        name="Echo", path="/echo", url=peer_url, scope=McpServer.Scope.SHARED_APP,
        transport_type=McpServer.Transport.STREAMABLE_HTTP,
        tools=[{"name": "add"}, {"name": "whoami"}, {"name": "hang"}],
    )  # fmt: skip
    return agent.pk, agent_key_create(actor=None, agent=agent, name="bench")[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(args: list[str], env: dict[str, str], base: Path) -> subprocess.Popen[bytes]:
    log = open(base / f"{Path(args[1]).name}.log", "wb")  # noqa: SIM115 (lives with the process)
    return subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)


def _wait_for(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port}")


async def _measure(url: str, token: str, tool: str, calls: int, concurrency: int) -> list[float]:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    limits = httpx2.Limits(max_connections=concurrency + 5)
    http = httpx2.AsyncClient(headers=headers, timeout=60, limits=limits)
    latencies: list[float] = []
    async with http, Client(streamable_http_client(url, http_client=http)) as client:
        await client.call_tool(tool, {"a": 1, "b": 2})  # warm up

        async def lane(count: int) -> None:
            for _ in range(count):
                started = time.perf_counter()
                result = await client.call_tool(tool, {"a": 1, "b": 2})
                latencies.append((time.perf_counter() - started) * 1000)
                assert not result.is_error, result

        per_lane = max(1, calls // concurrency)
        async with anyio.create_task_group() as tg:
            for _ in range(concurrency):
                tg.start_soon(lane, per_lane)
    return latencies


def _row(label: str, latencies: list[float], seconds: float) -> dict[str, Any]:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, round(len(ordered) * 0.99) - 1)]
    row = {"label": label, "calls": len(ordered), "per_s": len(ordered) / seconds,
           "p50": statistics.median(ordered), "p99": p99}  # fmt: skip
    print(f"{label:<24} {row['calls']:>5} calls {row['per_s']:>8.1f}/s  "
          f"p50 {row['p50']:7.2f} ms  p99 {row['p99']:7.2f} ms", flush=True)  # fmt: skip
    return row


def _run(direct_url: str, gateway_url: str, key: str, calls: int) -> None:
    for concurrency in CONCURRENCY:
        rows = {}
        for label, url, token, tool in (
            ("direct", direct_url, "", "add"),
            ("gateway", gateway_url, key, "mcp__echo__add"),
        ):
            started = time.perf_counter()
            latencies = anyio.run(_measure, url, token, tool, calls, concurrency)
            rows[label] = _row(f"{label} c={concurrency}", latencies, time.perf_counter() - started)
        added = {p: rows["gateway"][p] - rows["direct"][p] for p in ("p50", "p99")}
        print(f"{'added by the gateway':<24} c={concurrency}: p50 +{added['p50']:.2f} ms, "
              f"p99 +{added['p99']:.2f} ms", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--short", action="store_true", default=bool(os.environ.get("BENCH_SHORT")))
    args = parser.parse_args()
    calls = 50 if args.short else args.calls
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmp:
        base = Path(tmp)
        env = _environment(base)
        os.environ.update(env)
        peer_port, web_port = _free_port(), _free_port()
        peer = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "peers" / "echo_peer.py"), "streamable-http"],
            stdout=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        assert peer.stdout is not None
        peer_port = int(peer.stdout.readline().split()[1])
        agent_id, key = _seed(f"http://127.0.0.1:{peer_port}/mcp")
        bin_dir = Path(sys.executable).parent
        web = _start([str(bin_dir / "gunicorn"), "mcpcontrol.asgi", "--worker-class",
                      "uvicorn_worker.UvicornWorker", "--bind", f"127.0.0.1:{web_port}"],
                     env, base)  # fmt: skip
        try:
            _wait_for(web_port)
            _run(f"http://127.0.0.1:{peer_port}/mcp",
                 f"http://127.0.0.1:{web_port}/mcp/agents/{agent_id}", key, calls)  # fmt: skip
        finally:
            for proc in (web, peer):
                proc.terminate()
                proc.wait(timeout=20)


if __name__ == "__main__":
    main()
