"""Latency of the REST API through a real HTTP server, on a registry of 10,000 servers.

Seeds a fresh database (a temporary SQLite file, or the PostgreSQL server named by
--postgres, in a database of its own that is dropped and re-created), starts gunicorn on
127.0.0.1 with an ephemeral port, times sequential requests and prints p50/p95 and the SQL
queries each request ran (counted inside the server process and sent back in a header).

    python bench/api_bench.py [--servers 10000] [--requests 50] [--postgres postgres://...]
"""

import argparse
import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
_django_app: Any = None


def application(environ: dict[str, Any], start_response: Any) -> Any:
    """Django's WSGI app plus an X-Query-Count header (the gunicorn entry point)."""
    global _django_app
    from django.db import connection

    if _django_app is None:
        from django.core.wsgi import get_wsgi_application

        _django_app = get_wsgi_application()
    count = [0]

    def counting(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        count[0] += 1
        return execute(sql, params, many, context)

    def counted_start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        return start_response(status, [*headers, ("X-Query-Count", str(count[0]))], exc_info)

    with connection.execute_wrapper(counting):
        return _django_app(environ, counted_start)


def _environment(database_url: str, run_dir: str) -> dict[str, str]:
    from cryptography.fernet import Fernet

    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mcpcontrol.settings",
        "DJANGO_SECRET_KEY": "bench-secret-key-" + "x" * 40,
        "MCPCONTROL_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "DATABASE_URL": database_url,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "MCPCONTROL_RUN_DIR": run_dir,
        "MCPCONTROL_THROTTLE_WRITES": "100000/min",
        "DJANGO_SECURE_COOKIES": "0",
        "MCPCONTROL_LOG_LEVEL": "WARNING",
    }


def _recreate_postgres(url: str, name: str) -> str:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.rsplit("/", 1)[0] + "/" + name


def _drop_postgres(url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def _seed(count: int) -> tuple[str, str]:
    """Migrate, create `count` servers, an admin and a user; return their JWTs."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from mcpcontrol.api.jwt import jwt_pair_for
    from mcpcontrol.api.permissions import role_scopes
    from servers.models import McpServer
    from tokens.models import Token

    call_command("migrate", verbosity=0)
    users = get_user_model().objects
    admin = users.create_user("bench-admin", password="x" * 12, is_staff=True)
    user = users.create_user("bench-user", password="x" * 12)
    rng = random.Random(1)
    scopes = [McpServer.Scope.SHARED_APP, McpServer.Scope.SHARED_USER, McpServer.Scope.PRIVATE_USER]
    rows = []
    for n in range(count):
        scope = scopes[n % 3]
        tools = [
            {"name": f"tool{t}", "description": "does things"} for t in range(rng.randint(0, 12))
        ]
        rows.append(McpServer(
            name=f"Server {n:05d}", alias=f"server_{n:05d}", path=f"/server_{n:05d}",
            url=f"https://mcp{n}.example.com/mcp", scope=scope, tools=tools,
            owner=None if scope == McpServer.Scope.SHARED_APP else (admin if n % 2 else user),
            description=f"Benchmark server number {n}", tags=["bench", f"t{n % 10}"],
            status=rng.choice(["active", "inactive", "error"]),
        ))  # fmt: skip
    McpServer.objects.bulk_create(rows, batch_size=1000)
    Token.objects.bulk_create(
        [Token(user=admin, type="api_key", identifier=f"svc{n}", token="v") for n in range(500)]
    )
    tokens = [str(jwt_pair_for(user=u, scopes=role_scopes(u)).access_token) for u in (admin, user)]
    return tokens[0], tokens[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _get(port: int, path: str, token: str) -> tuple[float, int, int]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    started = time.perf_counter()
    conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    response = conn.getresponse()
    response.read()
    elapsed = (time.perf_counter() - started) * 1000
    conn.close()
    return elapsed, response.status, int(response.getheader("X-Query-Count", "-1"))


def _wait_ready(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("gunicorn exited early")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not start")


def _measure(port: int, cases: list[tuple[str, str, str]], repeats: int) -> list[dict[str, Any]]:
    results = []
    for label, path, token in cases:
        for _ in range(3):  # warm-up: connections, caches, lazy imports
            _get(port, path, token)
        samples = [_get(port, path, token) for _ in range(repeats)]
        times = sorted(s[0] for s in samples)
        results.append({
            "case": label, "path": path, "status": sorted({s[1] for s in samples}),
            "p50_ms": round(statistics.median(times), 1),
            "p95_ms": round(times[max(0, int(len(times) * 0.95) - 1)], 1),
            "queries": sorted({s[2] for s in samples}),
        })  # fmt: skip
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--postgres", help="server URL, e.g. postgres://postgres@127.0.0.1:5432/postgres"
    )
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory(prefix="api-bench-") as tmp:
        if args.postgres:
            database_url = _recreate_postgres(args.postgres, "mcpcontrol_api_bench")
        else:
            database_url = f"sqlite:///{tmp}/bench.sqlite3"
        env = _environment(database_url, tmp)
        os.environ.update(env)
        t0 = time.perf_counter()
        admin_token, user_token = _seed(args.servers)
        seeded = time.perf_counter() - t0
        port = _free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "api_bench:application", "--chdir", str(ROOT),
             "--pythonpath", f"{ROOT},{ROOT / 'bench'}", "-b", f"127.0.0.1:{port}",
             "-w", str(args.workers), "--log-level", "warning"],
            env=env,
        )  # fmt: skip
        try:
            _wait_ready(port, proc)
            middle = args.servers // 20 // 2 or 1
            cases = [
                ("servers first page (admin)", "/api/v1/servers?page=1&per_page=20", admin_token),
                ("servers middle page (admin)", f"/api/v1/servers?page={middle}&per_page=20", admin_token),
                ("servers first page (user)", "/api/v1/servers?page=1&per_page=20", user_token),
                ("servers middle page (user)", f"/api/v1/servers?page={middle // 2 or 1}&per_page=20", user_token),
                ("servers per_page=100 (admin)", "/api/v1/servers?page=1&per_page=100", admin_token),
                ("admin stats", "/api/v1/admin/servers/stats", admin_token),
            ]  # fmt: skip
            results = _measure(port, cases, args.requests)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        if args.postgres:
            from django.db import connections

            connections.close_all()
            _drop_postgres(args.postgres, "mcpcontrol_api_bench")
    backend = "postgresql" if args.postgres else "sqlite"
    print(f"backend={backend} servers={args.servers} requests/case={args.requests} "
          f"gunicorn workers={args.workers} seeded in {seeded:.1f}s")  # fmt: skip
    print(f"{'case':32} {'p50 ms':>8} {'p95 ms':>8} {'queries':>8}  status")
    for r in results:
        queries = ",".join(map(str, r["queries"]))
        print(f"{r['case']:32} {r['p50_ms']:>8} {r['p95_ms']:>8} {queries:>8}  {r['status']}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
