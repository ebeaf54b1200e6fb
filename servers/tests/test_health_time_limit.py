"""health_check_batch under Celery's soft time limit: the claims are released, nothing is left running.

The worker delivers the soft limit as SIGUSR1, whose handler raises SoftTimeLimitExceeded in
the task's thread; the test does the same, so no prefork worker is needed.
"""

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from billiard.exceptions import SoftTimeLimitExceeded

from servers import tasks
from servers.models import McpServer
from tests.mcp_peers import stdio_fields

pytestmark = pytest.mark.django_db
SOFT_LIMIT_SECONDS = 1.0


@pytest.fixture(autouse=True)
def _own_cache(private_cache: None) -> None:
    pass


def _raise_soft_limit(signum: int, frame: object) -> None:
    raise SoftTimeLimitExceeded()


@pytest.fixture
def soft_time_limit() -> Iterator[None]:
    """SIGUSR1 to ourselves after SOFT_LIMIT_SECONDS, handled the way billiard does."""
    previous = signal.signal(signal.SIGUSR1, _raise_soft_limit)
    timer = threading.Timer(SOFT_LIMIT_SECONDS, os.kill, (os.getpid(), signal.SIGUSR1))
    timer.start()
    yield
    timer.cancel()
    signal.signal(signal.SIGUSR1, previous)


def test_it_releases_the_claims_when_the_soft_time_limit_hits(
    make_server, hanging_url, tmp_path: Path, soft_time_limit
) -> None:
    pid_file = tmp_path / "pid"
    slow = {"init_timeout_ms": 30_000, "timeout_ms": 30_000}
    ids = [
        make_server(transport_type=McpServer.Transport.STREAMABLE_HTTP, url=hanging_url, **slow).id,
        make_server(**stdio_fields("hang_peer.py", str(pid_file)), **slow).id,
    ]
    started = time.monotonic()

    with pytest.raises(SoftTimeLimitExceeded):
        tasks.health_check_batch(ids)

    assert time.monotonic() - started < SOFT_LIMIT_SECONDS + 2
    assert not McpServer.objects.filter(id__in=ids, check_claimed_until__isnull=False).exists()
    assert not Path(f"/proc/{pid_file.read_text()}").exists()  # the stdio child was reaped
