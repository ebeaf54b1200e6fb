"""Real processes for the fault scenarios: a Redis server we can stop and start again on the
same port, the web app under gunicorn and a Celery worker, all on 127.0.0.1.

The web app and the worker share the test database, so these need a database another process
can open: PostgreSQL, or SQLite in a file (not pytest-django's in-memory one).
"""

import os
import queue
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import connection

from tests.factories import AdminFactory

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
STARTUP_SECONDS = 30
PASSWORD = "pw-for-faults-only"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Output:
    """Every line a process writes, read by a thread so its pipe never fills up."""

    def __init__(self, stream) -> None:
        self.lines: list[str] = []
        self._new: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream) -> None:
        for line in stream:
            self.lines.append(line)
            self._new.put(line)

    def wait_for(self, pattern: str, timeout: float = STARTUP_SECONDS) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        for line in self.lines:
            if match := re.search(pattern, line):
                return match
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._new.get(timeout=left)
            except queue.Empty:
                break
            if match := re.search(pattern, line):
                return match
        raise AssertionError(f"no line matching {pattern!r} within {timeout}s:\n{self.text}")

    def count(self, pattern: str) -> int:
        return sum(1 for line in self.lines if re.search(pattern, line))

    @property
    def text(self) -> str:
        return "".join(self.lines[-60:])


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


class RedisServer:
    """A throw-away redis-server without persistence: stop() loses every key, as an outage
    of a cache-only Redis would."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no"]  # fmt: skip
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            try:
                client.ping()
                return
            except redis.exceptions.ConnectionError:
                time.sleep(0.05)
        raise AssertionError(f"redis-server did not answer on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def database_url(transactional_db) -> str:
    """The test database as a URL another process can open (its rows committed)."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        name = str(db["NAME"])
        if name == ":memory:" or "mode=memory" in name:
            pytest.skip("the SQLite test database is in memory: another process cannot open it")
        return f"sqlite:///{name}"
    if "postgresql" not in db["ENGINE"]:
        pytest.skip(f"no URL form for {db['ENGINE']} here")
    host, port = db["HOST"] or "127.0.0.1", db["PORT"] or 5432
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgres://{db['USER']}{password}@{host}:{port}/{db['NAME']}"


def admin_user():
    """An admin whose password the production settings can check: the suite's autouse
    fixture hashes with MD5 for speed, which the processes under test do not accept."""
    hasher = PBKDF2PasswordHasher()
    user = AdminFactory()
    user.password = hasher.encode(PASSWORD, hasher.salt())
    user.save(update_fields=["password"])
    return user


def production_env(database_url: str, redis_url: str = "", **extra: str) -> dict[str, str]:
    """The suite's environment (test keys) in production mode, on these peers."""
    return {
        **os.environ, "DJANGO_DEBUG": "0", "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": database_url, "REDIS_URL": redis_url, **extra,
    }  # fmt: skip


class Web:
    def __init__(self, proc: subprocess.Popen, output: Output, port: int) -> None:
        self.proc, self.output = proc, output
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)

    def token_for(self, username: str, password: str = PASSWORD) -> str:
        response = self.client.post(
            "/api/v1/auth/token", json={"username": username, "password": password}
        )
        assert response.status_code == 200, response.text
        return str(response.json()["access"])


def start_web(env: dict[str, str]) -> Web:
    """gunicorn with one sync worker: one process, so one database connection to observe."""
    args = [str(BIN / "gunicorn"), "mcpcontrol.wsgi", "--bind", "127.0.0.1:0", "--workers", "1",
            "--no-control-socket", "--timeout", "60"]  # fmt: skip
    proc = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    output = Output(proc.stderr)
    try:
        port = int(output.wait_for(r"Listening at: http://127\.0\.0\.1:(\d+)").group(1))
        output.wait_for(r"Booting worker")
    except AssertionError:
        stop_process(proc)
        raise
    return Web(proc, output, port)
