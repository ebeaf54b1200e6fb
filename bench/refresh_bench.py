"""OAuth grant refresh at scale: N grants due at once, refreshed by the beat task's real path.

    python bench/refresh_bench.py [--grants 10000] [--beats 2] [--cycle 60]
    python bench/refresh_bench.py --short          # CI: 300 grants, same checks

What runs, all on 127.0.0.1:
- the project's authorization server peer (tests/peers/oauth_server.py: the mcp SDK's token
  endpoint with refresh token rotation) in this process, counting how often each refresh
  token is presented (a grant refreshed twice shows as a token presented twice);
- one server per grant, its shared OAuth grant due for refresh (expiring in 1 minute);
- `celery -A mcpcontrol worker` as deployed: prefork, one child per core (--concurrency=2),
  filesystem broker in a throwaway run folder (or REDIS_URL's broker when set);
- the beat's message: `credentials.tasks.grant_refresh_due` sent `--beats` times at once (as
  two overlapping beat ticks or two beats would), so single flight is under contention.

Uses DATABASE_URL when set (point it at a scratch PostgreSQL database: the bench migrates it
and deletes its own rows at the end), else a throwaway SQLite file. Prints grants, seconds
from the beat message to the last grant stored, refreshes/s, duplicates and failures; exits
1 unless every grant was refreshed once, with no failure, within --cycle seconds.
"""

import argparse
import os
import resource
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

from django_env import django_setup  # bench/ is sys.path[0] when run as a script

ROOT = django_setup("refresh-bench")

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Max  # noqa: E402
from django.utils import timezone  # noqa: E402
from mcp.server.auth.provider import RefreshToken  # noqa: E402
from mcp.shared.auth import OAuthClientInformationFull  # noqa: E402

from credentials.models import Grant  # noqa: E402
from mcpcontrol.celery import app  # noqa: E402
from servers.models import McpServer  # noqa: E402
from tests.peers.oauth_server import (  # noqa: E402
    SCOPE,
    MemoryProvider,
    _bound_socket,
    _serve,
    authorization_app,
)

PREFIX = "refresh-bench-"
BEAT_TASK = "credentials.tasks.grant_refresh_due"


class CountingProvider(MemoryProvider):
    """The peer's provider, also counting each refresh token presented at the token endpoint."""

    def __init__(self) -> None:
        super().__init__(access_ttl=3600)
        self.refreshes_presented: Counter[str] = Counter()
        self.first_call = self.last_call = 0.0

    async def load_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: str
    ) -> RefreshToken | None:
        self.refreshes_presented[refresh_token] += 1  # the SDK loads the token once per request
        now = time.monotonic()
        self.first_call, self.last_call = self.first_call or now, now
        return await super().load_refresh_token(client, refresh_token)


@contextmanager
def authorization_server(provider: CountingProvider) -> Iterator[str]:
    """The token endpoint's URL while the peer serves on an ephemeral port."""
    sock = _bound_socket()
    issuer = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with _serve(authorization_app(provider, issuer), sock):
        yield f"{issuer}/token"


def register(n: int, token_url: str, provider: CountingProvider) -> list[str]:
    """N OAuth servers, each with a shared grant expiring in a minute; their refresh tokens."""
    McpServer.objects.filter(name__startswith=PREFIX).delete()
    client_id, secret = provider.add_client(grant_types=["authorization_code", "refresh_token"])
    oauth = {"token_url": token_url, "client_id": client_id,
             "token_endpoint_auth_method": "client_secret_basic"}  # fmt: skip
    McpServer.objects.bulk_create(
        McpServer(
            name=f"{PREFIX}{i}", alias=f"{PREFIX}{i}", url=f"http://127.0.0.1:9/mcp/{i}",
            auth_type=McpServer.AuthType.OAUTH, oauth=oauth, oauth_client_secret=secret,
        )
        for i in range(n)
    )  # fmt: skip
    refresh_tokens = [f"rt-{i}-{os.urandom(8).hex()}" for i in range(n)]
    for token in refresh_tokens:
        provider.refresh[token] = RefreshToken(token=token, client_id=client_id, scopes=[SCOPE])
    servers = McpServer.objects.filter(name__startswith=PREFIX).order_by("id").values_list("id")
    expires = timezone.now() + timedelta(minutes=1)
    Grant.objects.bulk_create(
        Grant(server_id=sid, kind=Grant.Kind.OAUTH, secret=f"at-{i}", refresh_secret=token,
              expires_at=expires)
        for i, ((sid,), token) in enumerate(zip(servers, refresh_tokens, strict=True))
    )  # fmt: skip
    return refresh_tokens


@dataclass
class Worker:
    proc: "subprocess.Popen[str]"
    lines: list[str]


def start_worker(concurrency: int) -> Worker:
    """`celery -A mcpcontrol worker` as deployed, with this process's settings environment."""
    args = [str(Path(sys.executable).with_name("celery")), "-A", "mcpcontrol", "worker",
            f"--concurrency={concurrency}", "--loglevel=INFO", "-n", "refresh-bench@127.0.0.1"]  # fmt: skip
    proc = subprocess.Popen(
        args, cwd=ROOT, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    worker = Worker(proc, [])
    assert proc.stdout is not None
    threading.Thread(target=_drain, args=(proc.stdout, worker.lines), daemon=True).start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if any(" ready." in line for line in worker.lines):
            return worker
        time.sleep(0.1)
    stop_worker(worker)
    raise RuntimeError("worker did not start:\n" + "".join(worker.lines[-40:]))


def _drain(stream: IO[str], lines: list[str]) -> None:
    """Keep the worker's output flowing (a full pipe would block it); kept for errors."""
    for line in stream:
        lines.append(line)


def stop_worker(worker: Worker) -> None:
    worker.proc.terminate()
    try:
        worker.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        worker.proc.kill()
        worker.proc.wait()


def refreshed_count(since: Any) -> int:
    """Grants stored by a refresh after `since` (a fresh grant expires in an hour)."""
    rows = Grant.objects.filter(server__name__startswith=PREFIX)
    return rows.filter(expires_at__gt=since + timedelta(minutes=30), refresh_failures=0).count()


def wait_for_refreshes(n: int, started: Any, timeout: float) -> None:
    """Poll until every grant is refreshed, nothing moved for a while, or `timeout`."""
    deadline, last, last_change = time.monotonic() + timeout, -1, time.monotonic()
    while time.monotonic() < deadline:
        done = refreshed_count(started)
        if done != last:
            last, last_change = done, time.monotonic()
        if done >= n or time.monotonic() - last_change > 30:
            return
        time.sleep(0.5)


@dataclass
class Result:
    grants: int
    seconds: float
    refreshed: int
    duplicates: int
    failures: int
    token_calls: int
    worker_cpu: float = 0.0  # the worker and its pool children, start to stop
    as_cpu: float = 0.0  # this process while waiting: the AS, plus the progress polls

    def ok(self, cycle: float) -> bool:
        return (self.refreshed == self.grants and not self.duplicates and not self.failures
                and self.seconds <= cycle)  # fmt: skip


def measure(n: int, started: Any, provider: CountingProvider, tokens: list[str]) -> Result:
    """Counts at the authorization server and in the database, after the run."""
    rows = Grant.objects.filter(server__name__startswith=PREFIX)
    last = rows.aggregate(last=Max("updated_at"))["last"] or started
    failed = rows.filter(refresh_failures__gt=0).count() + rows.filter(needs_reauth=True).count()
    presented = [provider.refreshes_presented[t] for t in tokens]
    return Result(
        grants=n, seconds=(last - started).total_seconds(), refreshed=refreshed_count(started),
        duplicates=sum(c - 1 for c in presented if c > 1), failures=failed,
        token_calls=sum(provider.refreshes_presented.values()),
    )  # fmt: skip


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(args: argparse.Namespace) -> Result:
    """1. Start the authorization server and register the grants. 2. Start the worker.
    3. Send the beat's message `--beats` times and wait. 4. Count, clean up."""
    provider = CountingProvider()
    with authorization_server(provider) as token_url:
        tokens = register(args.grants, token_url, provider)
        children_before = _children_cpu()
        worker = start_worker(args.concurrency)
        try:
            started, own_before = timezone.now(), time.process_time()
            for _ in range(args.beats):
                app.send_task(BEAT_TASK)
            wait_for_refreshes(args.grants, started, timeout=args.timeout)
            time.sleep(args.settle)  # late or duplicate batches would reach the AS now
            result = measure(args.grants, started, provider, tokens)
            result.as_cpu = time.process_time() - own_before
        finally:
            stop_worker(worker)
            McpServer.objects.filter(name__startswith=PREFIX).delete()
    result.worker_cpu = _children_cpu() - children_before
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--grants", type=int, default=10_000)
    parser.add_argument("--beats", type=int, default=2, help="beat messages sent at once")
    parser.add_argument("--concurrency", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--cycle", type=float, default=60.0, help="the beat interval to meet")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--settle", type=float, default=3.0)
    parser.add_argument("--short", action="store_true", help="CI: 300 grants")
    args = parser.parse_args()
    if args.short:
        args.grants = min(args.grants, 300)
    call_command("migrate", verbosity=0)
    result = run(args)
    print(
        f"grants={result.grants} db={connection.vendor} worker_concurrency={args.concurrency} "
        f"beats={args.beats} refreshed={result.refreshed} seconds={result.seconds:.1f} "
        f"refreshes_per_s={result.refreshed / max(result.seconds, 1e-9):.0f} "
        f"token_calls={result.token_calls} duplicates={result.duplicates} "
        f"failures={result.failures} within_cycle={result.seconds <= args.cycle}\n"
        f"cpu_seconds worker={result.worker_cpu:.1f} as={result.as_cpu:.1f} "
        f"load_average={os.getloadavg()[0]:.1f} cores={os.cpu_count()}"
    )
    return 0 if result.ok(args.cycle) else 1


if __name__ == "__main__":
    sys.exit(main())
