"""A cluster of several machines on one host: two web processes, two Celery workers and one
beat, sharing one PostgreSQL database and one Redis, all on 127.0.0.1.

Set up as docs/deploy.md tells an operator: `manage.py migrate --noinput`, `ensure_admin` and
`ensure_schedules`, then `gunicorn mcpcontrol.wsgi`, `celery -A mcpcontrol worker` and
`celery -A mcpcontrol beat` with one production environment (DJANGO_DEBUG off). Each process
has a run folder of its own, as it would on its own machine.

- PostgreSQL: a database created for the run and dropped after it, on the server of the
  session's DATABASE_URL (SQLite cannot take five processes writing at once).
- Redis: a redis-server of our own on an ephemeral port, not a db number of a shared one. A
  worker killed on purpose leaves its unacknowledged task in the broker for the visibility
  timeout (an hour), to be redelivered to whoever uses that db next; our own server takes it
  away with it. It also keeps other runs' workers (CI, other checkouts) off our queues and
  ours off theirs, and needs no FLUSHDB on a server others use.
- The upstream: one counting MCP peer (tests/peers/counting_peer.py) serving every server
  at its own URL and recording each check it gets.
"""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest
from psycopg import sql

from tests.faults.conftest import Output, RedisServer
from tests.production import wait_until_ready

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PEERS = ROOT / "tests" / "peers"
# Seconds between beat's sweeps (MCPCONTROL_HEALTH_INTERVAL_SECONDS, the smallest allowed).
INTERVAL = 5
SERVERS = 12  # enabled ones, plus one disabled
ADMIN_PASSWORD = "cluster-admin-password-for-tests"  # a throwaway cluster's admin
# A server's check timeouts: a claim's lease is 2 x (1 + 3 s + 5 s close grace + 10 s for
# credentials) = 38 s. Soft time limit 40 s: a batch's budget is 20 s, one round of checks.
INIT_TIMEOUT_MS, TIMEOUT_MS = 1000, 3000
LEASE_SECONDS = 38


def wait_for[T](condition: Callable[[], T], *, timeout: float, what: str, every: float = 0.2) -> T:
    """Poll until `condition()` is truthy and return it, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(every)
    return value


@dataclass
class Process:
    name: str
    proc: subprocess.Popen[str]
    output: Output

    def stop(self) -> None:
        stop_all([self])

    def children(self) -> list[int]:
        """Pids of the processes it started (a worker's pool processes)."""
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # gone meanwhile
            if int(fields[1]) == self.proc.pid:
                found.append(int(stat.parent.name))
        return found

    def events(self, prefix: str) -> list[float]:
        """Unix times of its JSON log lines whose event starts with `prefix`."""
        times = []
        for line in list(self.output.lines):
            if not line.startswith("{"):
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if str(entry.get("event", "")).startswith(prefix):
                times.append(datetime.fromisoformat(entry["timestamp"]).timestamp())
        return times


def stop_all(processes: list[Process]) -> None:
    """SIGTERM to each (a warm shutdown), all at once; then SIGKILL for anything left of
    their process groups."""
    for process in processes:
        if process.proc.poll() is None:
            process.proc.terminate()
    deadline = time.monotonic() + 20
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        with contextlib.suppress(ProcessLookupError):  # its own session: only its processes
            os.killpg(process.proc.pid, signal.SIGKILL)
        process.proc.wait(timeout=10)


@dataclass
class Web:
    process: Process
    url: str
    token: str = ""

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=30, **kwargs)


@dataclass
class Cluster:
    base: Path
    env: dict[str, str]
    database_url: str
    peer_url: str
    webs: list[Web] = field(default_factory=list)
    workers: list[Process] = field(default_factory=list)
    beats: list[Process] = field(default_factory=list)

    def spawn(self, name: str, *args: str) -> Process:
        """One role's process, in a session of its own (so a "machine" can be killed whole)."""
        env = {**self.env, "MCPCONTROL_RUN_DIR": str(self.base / name),
               "MCPCONTROL_STATIC_ROOT": str(self.base / name / "static")}  # fmt: skip
        (self.base / name / "static").mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, start_new_session=True,
        )  # fmt: skip
        assert proc.stdout is not None
        return Process(name, proc, Output(proc.stdout))

    def start_worker(self, name: str) -> Process:
        # One pool process per worker: "both workers are mid-check" is then observable at
        # the peer (more checks held at once than one worker's MCPCONTROL_HEALTH_CONCURRENCY).
        worker = self.spawn(name, str(BIN / "celery"), "-A", "mcpcontrol", "worker",
                            "--loglevel=INFO", "--concurrency=1", "-n", f"{name}@127.0.0.1")  # fmt: skip
        self.workers.append(worker)
        return worker

    def start_beat(self, name: str) -> Process:
        beat = self.spawn(name, str(BIN / "celery"), "-A", "mcpcontrol", "beat",
                          "--loglevel=INFO", "--pidfile=")  # fmt: skip
        self.beats.append(beat)
        return beat

    def start_web(self, name: str) -> Web:
        # Without gunicorn's control socket: it is one path per host (~/.gunicorn/), which
        # these web processes and any other gunicorn here would take from each other.
        process = self.spawn(name, str(BIN / "gunicorn"), "mcpcontrol.wsgi",
                             "--bind", "127.0.0.1:0", "--no-control-socket")  # fmt: skip
        web = Web(process, url="")
        self.webs.append(web)
        return web

    # The upstream's view.
    def checks(self) -> list[tuple[str, float]]:
        """Every check the peer saw: (server name, unix time of its tools/list)."""
        return [(key, at) for key, at in httpx.get(f"{self.peer_url}/_checks").json()]

    def held(self) -> int:
        return int(httpx.get(f"{self.peer_url}/_inflight").json())

    def slow(self, seconds: float) -> None:
        httpx.post(f"{self.peer_url}/_slow", params={"seconds": seconds}).raise_for_status()

    # The workers' view.
    def sweep_starts(self, since: float) -> list[float]:
        """When each sweep planned after `since` started (its workers' log lines)."""
        starts = (t for w in self.workers for t in w.events("health sweep planned"))
        return sorted(t for t in starts if t >= since)

    def sweeps_skipped(self, since: float) -> int:
        skipped = (t for w in self.workers for t in w.events("health sweep skipped"))
        return sum(1 for t in skipped if t >= since)

    # The database's view.
    def set_last_run(self, task: str, *, at: float) -> None:
        """Set when beat last sent `task` (a beat reads it when it starts)."""
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute(
                "UPDATE django_celery_beat_periodictask SET last_run_at = %s WHERE task = %s",
                (datetime.fromtimestamp(at, UTC), task),
            )

    def claims(self) -> dict[str, str]:
        """Server name -> claim token, for every server some worker holds right now."""
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT name, check_claim FROM mcps WHERE check_claim <> ''"
            ).fetchall()
        return dict(rows)


def _postgres_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        pytest.skip("the cluster test needs PostgreSQL: set DATABASE_URL=postgres://...")
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    return url


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _env(database_url: str, redis_url: str) -> dict[str, str]:
    """A production environment, with nothing of the test session's own settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "MCPCONTROL_", "DATABASE_URL", "REDIS_URL", "PROMETHEUS"))
        and not k.startswith("CELERY_")
    }
    env.update(
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="cluster-test-secret-key-0123456789-abcdefghijklmnopq",
        MCPCONTROL_ENCRYPTION_KEYS="J1Vc8tKZYkW2y2nQb3c2ZQ6oQ0dM0Wn6c2v7Zr0Q5hU=",
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        DJANGO_SECURE_COOKIES="0",  # plain http on loopback
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        MCPCONTROL_ADMIN_PASSWORD=ADMIN_PASSWORD,
        MCPCONTROL_ALLOW_PRIVATE_UPSTREAMS="1",  # the peer is on loopback
        MCPCONTROL_HEALTH_INTERVAL_SECONDS=str(INTERVAL),
        MCPCONTROL_HEALTH_CONCURRENCY="2",  # 2 checks a batch: a sweep is several batches
        CELERY_TASK_SOFT_TIME_LIMIT="40",
        CELERY_TASK_TIME_LIMIT="50",
        WEB_CONCURRENCY="1",
    )
    return env


def _manage(env: dict[str, str], *args: str) -> Callable[[], None]:
    """Start `manage.py args`; the returned function waits for it to succeed."""
    proc = subprocess.Popen(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip

    def done() -> None:
        output, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"manage.py {' '.join(args)}:\n{output}"

    return done


def _start_peer() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, str(PEERS / "counting_peer.py")],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    port = Output(proc.stdout).wait_for(r"^PORT (\d+)").group(1)
    return proc, f"http://127.0.0.1:{port}"


def _ready(cluster: Cluster) -> None:
    for web in cluster.webs:
        match = web.process.output.wait_for(r"Listening at: (http://127\.0\.0\.1:\d+)")
        web.url = match.group(1)
        wait_until_ready(web.url)
        response = httpx.post(
            f"{web.url}/api/v1/auth/token",
            json={"username": "admin", "password": ADMIN_PASSWORD}, timeout=30,
        )  # fmt: skip
        assert response.status_code == 200, response.text
        web.token = response.json()["access"]
    for worker in cluster.workers:
        worker.output.wait_for(r"@127\.0\.0\.1 ready", timeout=60)


def _register_servers(cluster: Cluster) -> None:
    """SERVERS enabled servers and a disabled one, through both web processes in turn."""
    names = [f"s{i:02d}" for i in range(SERVERS)] + ["off"]
    for i, name in enumerate(names):
        body = {
            "server_name": name, "url": f"{cluster.peer_url}/s/{name}/mcp",
            "init_timeout": INIT_TIMEOUT_MS, "timeout": TIMEOUT_MS, "enabled": name != "off",
        }  # fmt: skip
        created = cluster.webs[i % 2].call("POST", "/api/v1/servers", json=body)
        assert created.status_code == 201, created.text


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    base_url = _postgres_url()
    name = f"mcpcontrol_cluster_{uuid.uuid4().hex[:8]}"
    redis, (peer, peer_url) = RedisServer(), _start_peer()
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    cluster = Cluster(base=tmp_path_factory.mktemp("cluster"), env={},
                      database_url=_with_database(base_url, name), peer_url=peer_url)  # fmt: skip
    try:
        redis.start()
        cluster.env = _env(cluster.database_url, redis.url)
        _manage(cluster.env, "migrate", "--noinput")()
        # The schema exists: the rest starts at once, as a rollout does after its migrate step
        # (beat once its schedule is there; logins once the admin is).
        admin, schedules = (
            _manage(cluster.env, "ensure_admin"),
            _manage(cluster.env, "ensure_schedules"),
        )
        for i in (1, 2):
            cluster.start_web(f"web{i}")
            cluster.start_worker(f"worker{i}")
        schedules()
        cluster.start_beat("beat1")
        admin()
        _ready(cluster)
        _register_servers(cluster)
        yield cluster
    finally:
        stop_all([w.process for w in cluster.webs] + cluster.workers + cluster.beats)
        redis.stop()
        peer.terminate()
        peer.wait(timeout=10)
        with psycopg.connect(base_url, autocommit=True) as conn:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            conn.execute(drop.format(sql.Identifier(name)))


def log_tail(cluster: Cluster) -> str:
    """The last lines of every process, for a failing assertion's message."""
    processes = [w.process for w in cluster.webs] + cluster.workers + cluster.beats
    return "\n".join(f"--- {p.name}\n{p.output.text}" for p in processes)
