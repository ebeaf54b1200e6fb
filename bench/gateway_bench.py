"""Tool calls through the MCP gateway versus straight to the upstream.

Seeds a temporary SQLite database (one user, one agent with a key, one streamable HTTP
server: tests/peers/echo_peer.py), serves mcpcontrol.asgi with gunicorn and `--workers`
uvicorn workers on 127.0.0.1, and times `add` calls with the SDK's client at concurrency 1
and 50, directly against the peer, through /mcp/agents/<id>, and through ContextForge's
gateway (`mcp-contextforge-gateway`, from the virtualenv `make bench-deps` installs in
.run/contextforge-venv; started here on 127.0.0.1 with as many workers and a throwaway
SQLite database, the peer registered through its admin API, called at
/servers/<id>/mcp with a JWT it minted). Prints calls/s and p50/p99 latency of each, the
added p50/p99 of each gateway, and our throughput over ContextForge's.

    python bench/gateway_bench.py [--calls 400] [--workers 1] [--short]  (--short or BENCH_SHORT=1: CI)
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
import httpx2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CONCURRENCY = (1, 50)
CALL_TIMEOUT = 180  # seconds: ContextForge's p99 at c=50 passed 50 s on the busy machine
CONTEXTFORGE_VENV = ROOT / ".run" / "contextforge-venv"
CONTEXTFORGE_START_SECONDS = 300  # it migrates its database first: minutes on a busy machine


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


def _wait_for(port: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port}")


def _contextforge_env(base: Path, port: int) -> dict[str, str]:
    """Its settings for a throwaway local run: strong bench-only secrets (it refuses weak
    ones), a SQLite file, the admin API on, the UI off, loopback upstreams allowed."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "MCPCONTROL"))},
        "HOST": "127.0.0.1", "PORT": str(port),
        "DATABASE_URL": f"sqlite:///{base / 'contextforge.db'}",
        "JWT_SECRET_KEY": "bench-only-jwt-secret-0123456789abcdef0123",
        "AUTH_ENCRYPTION_SECRET": "bench-only-encryption-secret-0123456789abc",
        "PLATFORM_ADMIN_EMAIL": "admin@example.com",
        "PLATFORM_ADMIN_PASSWORD": "Bench-Admin-Password-2026!",
        "DEFAULT_USER_PASSWORD": "Bench-User-Password-2026!",
        "BASIC_AUTH_PASSWORD": "Bench-Basic-Password-2026!",
        "MCPGATEWAY_UI_ENABLED": "false", "MCPGATEWAY_ADMIN_API_ENABLED": "true",
        "SSRF_ALLOW_LOCALHOST": "true", "LOG_LEVEL": "ERROR",
    }  # fmt: skip


def _contextforge(base: Path, peer_url: str, workers: int) -> tuple[Any, str, str, str] | str:
    """Start ContextForge, register the peer, make a virtual server with its `add`; return
    (process, MCP URL, token, tool name), or why it was skipped."""
    bin_dir = CONTEXTFORGE_VENV / "bin"
    if not (bin_dir / "mcpgateway").exists():
        return f"not installed ({CONTEXTFORGE_VENV}: run `make bench-deps`)"
    port = _free_port()
    env = _contextforge_env(base, port)
    log = open(base / "contextforge.log", "wb")  # noqa: SIM115 (lives with the process)
    proc = subprocess.Popen(
        [str(bin_dir / "mcpgateway"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", str(workers)],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=base,
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + CONTEXTFORGE_START_SECONDS
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx2.get(f"{base_url}/health", timeout=5).status_code == 200:
                break
        except httpx2.HTTPError:
            pass
        time.sleep(1)
    else:
        proc.terminate()
        return f"did not start within {CONTEXTFORGE_START_SECONDS}s (see {base}/contextforge.log)"
    token = subprocess.run(
        [str(bin_dir / "python"), "-m", "mcpgateway.utils.create_jwt_token",
         "-u", env["PLATFORM_ADMIN_EMAIL"], "--exp", "120"],
        env=env, capture_output=True, text=True, check=True, cwd=base,
    ).stdout.strip().splitlines()[-1]  # fmt: skip
    api = httpx2.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=60)
    with api:
        api.post("/gateways", json={"name": "echo", "url": peer_url,
                                    "transport": "STREAMABLEHTTP"}).raise_for_status()  # fmt: skip
        tools = api.get("/tools").json()
        tools = tools if isinstance(tools, list) else tools.get("items", [])
        [add] = [t for t in tools if t.get("originalName") == "add"]
        server = api.post("/servers", json={"server": {"name": "bench",
                                                       "associated_tools": [add["id"]]}})  # fmt: skip
        server.raise_for_status()
    return proc, f"{base_url}/servers/{server.json()['id']}/mcp", token, add["name"]


async def _measure(url: str, token: str, tool: str, calls: int, concurrency: int) -> list[float]:
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    limits = httpx2.Limits(max_connections=concurrency + 5)
    http = httpx2.AsyncClient(headers=headers, timeout=CALL_TIMEOUT, limits=limits)
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


Rows = dict[int, dict[str, dict[str, Any]]]  # concurrency -> label -> _row


def _measure_all(targets: list[tuple[str, str, str, str]], calls: int, rows: Rows) -> None:
    """targets: (label, MCP URL, bearer, tool name), each at every concurrency."""
    for concurrency in CONCURRENCY:
        for label, url, token, tool in targets:
            started = time.perf_counter()
            try:
                latencies = anyio.run(_measure, url, token, tool, calls, concurrency)
            except Exception as exc:  # theirs may fail under load; ours and the peer may not
                if label != "contextforge":
                    raise
                cause: BaseException = exc
                while isinstance(cause, BaseExceptionGroup) and cause.exceptions:
                    cause = cause.exceptions[0]  # the first cause, not the task group's wrapper
                print(f"{label} c={concurrency}: failed ({type(cause).__name__}: {cause})",
                      flush=True)  # fmt: skip
                continue
            rows.setdefault(concurrency, {})[label] = _row(
                f"{label} c={concurrency}", latencies, time.perf_counter() - started
            )


def _summary(rows: Rows) -> None:
    for concurrency, by_label in rows.items():
        for label in [k for k in by_label if k != "direct"]:
            added = {p: by_label[label][p] - by_label["direct"][p] for p in ("p50", "p99")}
            print(f"{'added by ' + label:<24} c={concurrency}: p50 +{added['p50']:.2f} ms, "
                  f"p99 +{added['p99']:.2f} ms", flush=True)  # fmt: skip
        if "contextforge" in by_label:
            ratio = by_label["gateway"]["per_s"] / by_label["contextforge"]["per_s"]
            print(f"{'gateway / contextforge':<24} c={concurrency}: {ratio:.1f}x the calls/s",
                  flush=True)  # fmt: skip
    print(f"load average: {os.getloadavg()[0]:.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers of each gateway")
    parser.add_argument("--no-contextforge", action="store_true", help="skip ContextForge")
    parser.add_argument("--short", action="store_true", default=bool(os.environ.get("BENCH_SHORT")))
    args = parser.parse_args()
    calls = 50 if args.short else args.calls
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmp:
        base = Path(tmp)
        env = {**_environment(base), "WEB_CONCURRENCY": str(args.workers)}
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
        procs: list[Any] = [web, peer]
        try:
            _wait_for(web_port)
            peer_url = f"http://127.0.0.1:{peer_port}/mcp"
            targets = [("direct", peer_url, "", "add"),
                       ("gateway", f"http://127.0.0.1:{web_port}/mcp/agents/{agent_id}", key,
                        "mcp__echo__add")]  # fmt: skip
            print(f"load average at start: {os.getloadavg()[0]:.1f}", flush=True)
            rows: Rows = {}
            _measure_all(targets, calls, rows)
            # ContextForge starts only now: its background work must not slow the others.
            forge = "skipped (--no-contextforge)" if args.no_contextforge else (
                _contextforge(base, peer_url, args.workers))  # fmt: skip
            if isinstance(forge, str):
                print(f"ContextForge: {forge}", flush=True)
            else:
                procs.insert(0, forge[0])
                _measure_all([("contextforge", *forge[1:])], calls, rows)
            _summary(rows)
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(timeout=30)


if __name__ == "__main__":
    main()
