"""A real production server for the suite: gunicorn, two workers, DEBUG off, on 127.0.0.1.

Set up the way docs/deploy.md tells an operator to (migrate, ensure_admin, collectstatic,
then gunicorn with the repository's gunicorn.conf.py), on its own SQLite file and run folder
so it never shares state with the test database. Its stderr (every log line) goes to a file
the log tests read.
"""

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
STARTUP_SECONDS = 60
ADMIN_PASSWORD = "prod-admin-password-for-tests"  # a throwaway server's admin


@dataclass
class ProductionServer:
    url: str
    log: Path
    env: dict[str, str]
    admin_password: str = ADMIN_PASSWORD

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def production_env(base: Path) -> dict[str, str]:
    """The environment of a DEBUG-off deployment, with nothing from the test session's own."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "MCPCONTROL_", "DATABASE_URL", "REDIS_URL", "PROMETHEUS"))
    }
    env.update(
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="production-test-secret-key-0123456789-abcdefghijklmnop",
        MCPCONTROL_ENCRYPTION_KEYS="J1Vc8tKZYkW2y2nQb3c2ZQ6oQ0dM0Wn6c2v7Zr0Q5hU=",
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        DJANGO_SECURE_COOKIES="0",  # plain http on loopback: no TLS terminator in front
        DATABASE_URL=f"sqlite:///{base / 'db.sqlite3'}",
        MCPCONTROL_RUN_DIR=str(base / "run"),
        MCPCONTROL_STATIC_ROOT=str(base / "static"),
        MCPCONTROL_ADMIN_PASSWORD=ADMIN_PASSWORD,
        WEB_CONCURRENCY="2",  # two gunicorn workers: the metrics must add both up
    )
    return env


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True,
        capture_output=True, timeout=300,
    )  # fmt: skip


def _wait_for_listening(proc: subprocess.Popen[bytes], log: Path) -> str:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if match := re.search(r"Listening at: (http://127\.0\.0\.1:\d+)", log.read_text()):
            return match.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"gunicorn did not start:\n{log.read_text()[-3000:]}")


def wait_until_ready(url: str) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url}/healthz never answered 200")


@pytest.fixture(scope="session")
def production_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProductionServer]:
    base = tmp_path_factory.mktemp("production")
    env = production_env(base)
    manage(env, "migrate", "--noinput")
    manage(env, "ensure_admin")
    manage(env, "collectstatic", "--noinput")
    log = base / "server.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [str(BIN / "gunicorn"), "mcpcontrol.wsgi", "--bind", "127.0.0.1:0"],
            cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        url = _wait_for_listening(proc, log)
        wait_until_ready(url)
        yield ProductionServer(url=url, log=log, env=env)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
