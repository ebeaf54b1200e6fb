"""End to end: a real Celery worker process runs health_sweep against Redis and the test DB.

health_sweep fans out into health_check_batch tasks on its own queue; the worker's settings make
the 4 servers 2 batches, so the worker runs the sweep and both batches.
"""

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from servers import tasks
from servers.models import McpServer

ROOT = Path(__file__).resolve().parents[2]
WORKER_WAIT_SECONDS = 60


def _database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith(".sqlite3"):
        name = str(db["NAME"])
        if name == ":memory:" or "mode=memory" in name:
            pytest.skip("the SQLite test database is in memory: a worker process cannot share it")
        return f"sqlite:///{name}"
    if "postgresql" not in db["ENGINE"]:
        pytest.skip(f"no URL form for {db['ENGINE']} here")
    host, port = db["HOST"] or "127.0.0.1", db["PORT"] or 5432
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgres://{db['USER']}{password}@{host}:{port}/{db['NAME']}"


def _start_worker(queue: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ, "DATABASE_URL": _database_url(), "REDIS_URL": settings.REDIS_URL,
        # 2 at a time, and a 20 s batch budget: one round of servers that could hang
        # 2 + 2 s plus the close grace and the credential pre-step (19 s), so a batch holds 2.
        "MCPCONTROL_HEALTH_CONCURRENCY": "2", "CELERY_TASK_SOFT_TIME_LIMIT": "40",
        "CELERY_TASK_TIME_LIMIT": "50",
    }  # fmt: skip
    celery = str(Path(sys.executable).with_name("celery"))
    args = [celery, "-A", "mcpcontrol", "worker", "-Q", queue, "--pool=solo", "-l", "WARNING",
            "--without-gossip", "--without-mingle", "--without-heartbeat"]  # fmt: skip
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)


def _wait_until_checked(ids: list[int]) -> None:
    deadline = time.monotonic() + WORKER_WAIT_SECONDS
    while time.monotonic() < deadline:
        if not McpServer.objects.filter(id__in=ids, last_checked_at=None).exists():
            return
        time.sleep(0.3)
    raise AssertionError(f"the worker did not check {ids} within {WORKER_WAIT_SECONDS}s")


@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_it_refreshes_all_servers_in_a_worker(sdk_http_url, refused_url) -> None:
    if not getattr(settings, "REDIS_URL", ""):
        pytest.skip("REDIS_URL is not set: no broker for a real worker")
    servers = [
        McpServer.objects.create(
            name=f"w{i}", path=f"/w{i}", url=url, init_timeout_ms=2000, timeout_ms=2000
        )
        for i, url in enumerate([sdk_http_url, sdk_http_url, sdk_http_url, refused_url])
    ]
    queue = f"health-e2e-{uuid.uuid4().hex}"  # our own queue: never steal others' tasks
    worker = _start_worker(queue)
    try:
        tasks.health_sweep.apply_async(queue=queue)
        _wait_until_checked([s.id for s in servers])
    finally:
        worker.terminate()
        worker.wait(timeout=20)
    statuses = dict(McpServer.objects.values_list("name", "status"))
    # One failed check is below the error threshold: w3 stays active, its error recorded.
    assert statuses == {"w0": "active", "w1": "active", "w2": "active", "w3": "active"}
    assert McpServer.objects.get(name="w0").num_tools == 3
    assert McpServer.objects.get(name="w3").error_message.startswith("unreachable")
    assert not McpServer.objects.filter(check_claimed_until__isnull=False).exists()
