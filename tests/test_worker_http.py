"""A Celery worker pod answers its probes and serves its own counters on a port."""

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from mcpcontrol import worker_http
from tests.test_health_endpoints import closed_port

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_a_worker_serves_healthz_readyz_and_its_metrics(tmp_path):
    port = closed_port()
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_DEBUG"},
        "MCPCONTROL_RUN_DIR": str(tmp_path / "run"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "MCPCONTROL_WORKER_HTTP_PORT": str(port),
    }
    celery = str(Path(sys.executable).with_name("celery"))
    worker = subprocess.Popen(
        [celery, "-A", "mcpcontrol", "worker", "--pool=solo", "-l", "WARNING",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        healthz = _wait_for(f"{base}/healthz")
        readyz = httpx.get(f"{base}/readyz", timeout=10)
        scraped = httpx.get(f"{base}/metrics", timeout=10)
        other = httpx.get(f"{base}/admin/", timeout=10)
    finally:
        worker.terminate()
        worker.wait(timeout=30)

    assert healthz.status_code == 200
    assert readyz.status_code == 200
    assert readyz.json()["checks"] == {"database": "ok", "cache": "ok", "broker": "ok"}
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    assert "mcpcontrol_servers" not in scraped.text  # the web processes report the state
    assert other.status_code == 404


def _wait_for(url: str, seconds: float = 60) -> httpx.Response:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"{url} never answered")


def call(path: str, remote_addr: str = "127.0.0.1") -> tuple[str, bytes]:
    environ = {"PATH_INFO": path, "REMOTE_ADDR": remote_addr}
    seen: list[str] = []
    body = b"".join(worker_http.app(environ, lambda status, headers: seen.append(status)))
    return seen[0], body


@pytest.mark.django_db
def test_the_worker_app_answers_only_probes_and_allowed_scrapes():
    assert call("/healthz") == ("200 OK", b"ok\n")
    assert call("/readyz")[0] == "200 OK"
    assert call("/metrics")[0] == "200 OK"
    assert call("/metrics", remote_addr="192.0.2.1") == ("403 Forbidden", b"forbidden\n")
    assert call("/admin/")[0] == "404 Not Found"
