"""Redis stops and starts again (finding 2): the API keeps serving, the worker keeps running.

Redis is both the cache and the Celery broker. During a 30 s outage 158 of 595 API
requests got a 500 (cache reads and throttle counters raised), and a worker with a task in
flight exited ("Unrecoverable error: AttributeError(...'hostname')") until restarted by hand.
"""

import socket
import subprocess
import threading
import time

import pytest
from celery import Celery

from servers.models import McpServer
from tests.faults.conftest import (
    BIN,
    ROOT,
    Output,
    admin_user,
    production_env,
    start_web,
    stop_process,
)

pytestmark = [pytest.mark.faults, pytest.mark.slow]


def _requests(web, token: str, server_id: str, rounds: int) -> list[int]:
    """A mix of reads and writes, as a client would send them: their status codes."""
    headers = {"Authorization": f"Bearer {token}"}
    codes = []
    for i in range(rounds):
        codes.append(web.client.get("/api/v1/servers", headers=headers).status_code)
        detail = web.client.get(f"/api/v1/servers/{server_id}", headers=headers)
        codes.append(detail.status_code)
        patch = web.client.patch(
            f"/api/v1/servers/{server_id}",
            json={"description": f"round {i}"},
            headers={**headers, "If-Match": detail.headers.get("ETag", "*")},
        )
        codes.append(patch.status_code)
        created = web.client.post(
            "/api/v1/servers",
            json={
                "server_name": f"outage {time.monotonic_ns()}",
                "url": "https://o.example.com/mcp",
            },
            headers=headers,
        )
        codes.append(created.status_code)
    return codes


def test_the_api_serves_reads_and_writes_while_redis_is_down(redis_server, database_url):
    admin = admin_user()
    web = start_web(production_env(database_url, redis_server.url))
    try:
        token = web.token_for(admin.username)
        created = web.client.post(
            "/api/v1/servers",
            json={"server_name": "Weather", "url": "https://weather.example.com/mcp"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert created.status_code == 201, created.text
        server_id = created.json()["id"]

        redis_server.stop()
        during = _requests(web, token, server_id, rounds=10)
        redis_server.start()
        time.sleep(2.5)  # mcpcontrol.lib.cache.RETRY_SECONDS: the first call after it retries
        after = _requests(web, token, server_id, rounds=2)
    finally:
        stop_process(web.proc)

    assert [c for c in during if c >= 500] == []
    assert set(during) == {200, 201}
    assert set(after) == {200, 201}
    assert web.output.count("cache unavailable") == 1  # once per outage, not once per call
    assert web.output.count("cache available again") == 1


def test_a_login_still_works_while_redis_is_down(redis_server, database_url):
    """The login throttle counts in the cache; with the cache down it lets logins through."""
    admin = admin_user()
    web = start_web(production_env(database_url, redis_server.url))
    try:
        redis_server.stop()
        token = web.token_for(admin.username)
        listed = web.client.get("/api/v1/servers", headers={"Authorization": f"Bearer {token}"})
    finally:
        stop_process(web.proc)

    assert listed.status_code == 200


class _HangingPeer:
    """Accepts TCP connections and never answers: a check of it runs until its timeout."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.held: list[socket.socket] = []
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/mcp"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                self.held.append(self.listener.accept()[0])
            except OSError:
                return

    def close(self) -> None:
        self.listener.close()
        for conn in self.held:
            conn.close()


def _start_worker(env: dict[str, str]) -> tuple[subprocess.Popen, Output]:
    """`celery -A mcpcontrol worker` as deployed: the prefork pool, here with 2 children (the
    default is one per CPU). With a single child, Celery 5.7.0 did not show the crash."""
    args = [str(BIN / "celery"), "-A", "mcpcontrol", "worker", "--concurrency=2", "-l", "INFO"]
    proc = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    return proc, Output(proc.stdout)


def _wait_until_checked(server: McpServer, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        server.refresh_from_db()
        if server.last_checked_at is not None:
            return True
        time.sleep(0.3)
    return False


def test_the_worker_survives_a_broker_outage_mid_task_and_resumes(redis_server, database_url):
    hanging = _HangingPeer()
    slow = McpServer.objects.create(
        name="slow", alias="slow", url=hanging.url, init_timeout_ms=30_000, timeout_ms=30_000
    )
    with socket.socket() as sock:  # a port nobody listens on: a check fails fast
        sock.bind(("127.0.0.1", 0))
        refused = f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
    later = McpServer.objects.create(name="later", alias="later", url=refused)
    sender = Celery(broker=redis_server.url)
    worker, output = _start_worker(production_env(database_url, redis_server.url))
    try:
        output.wait_for(r"celery@\S+ ready")
        sender.send_task("servers.tasks.refresh_server", args=[slow.id])
        output.wait_for(r"Task servers\.tasks\.refresh_server\[\S+\] received")
        time.sleep(1)  # the check is now waiting on the hanging peer

        redis_server.stop()
        output.wait_for(r"Connection to broker lost")
        time.sleep(3)
        redis_server.start()
        sender.send_task("servers.tasks.refresh_server", args=[later.id])
        checked = _wait_until_checked(later, timeout=60)
        alive = worker.poll() is None
    finally:
        sender.close()
        stop_process(worker)
        hanging.close()

    assert "Unrecoverable error" not in "".join(output.lines)
    assert alive, output.text
    assert checked, output.text
    # The check ran after the outage and recorded its failure (status turns to error only
    # after MCPCONTROL_HEALTH_FAILURE_THRESHOLD failures in a row).
    assert later.consecutive_failures == 1
    assert later.error_message
