"""`make test-mongo`: the suite on MongoDB without a MongoDB install (docs/storage.md).

Loaded as a plugin (-p tests.mongo_emulator) before tests.pytest_env and Django: with
MCPCONTROL_TEST_MONGO=emulator it starts SecantusDB (a MongoDB wire-compatible server from
PyPI) on 127.0.0.1 at an ephemeral port, in memory, sets MONGO_URI to it and stops it when the
session ends. With MONGO_URI already set (a real MongoDB 7+), it starts nothing.
"""

import atexit
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

EMULATOR = "emulator"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_emulator() -> str:
    port = _free_port()
    server = Path(sys.executable).with_name("secantusd-py")
    log = open(os.path.join(os.environ.get("TMPDIR", "/tmp"), f"secantus-{port}.log"), "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [str(server), "--host", "127.0.0.1", "--port", str(port), "--storage-path", ":memory:",
         "--log-level", "WARNING"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()

    atexit.register(stop)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"secantusd-py exited with {proc.returncode}: see {log.name}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return f"mongodb://127.0.0.1:{port}/?directConnection=true"
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"secantusd-py did not listen on 127.0.0.1:{port} within 30 s")


if os.environ.get("MCPCONTROL_TEST_MONGO") == EMULATOR and not os.environ.get("MONGO_URI"):
    os.environ["MONGO_URI"] = _start_emulator()
    os.environ["MCPCONTROL_TEST_MONGO_SERVER"] = EMULATOR


def on_mongodb() -> bool:
    return bool(os.environ.get("MONGO_URI"))


def on_emulator() -> bool:
    return os.environ.get("MCPCONTROL_TEST_MONGO_SERVER") == EMULATOR


def pytest_report_header() -> str:
    if not on_mongodb():
        return ""
    where = "SecantusDB emulator" if on_emulator() else "MONGO_URI"
    return f"storage: MongoDB ({where})"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On MongoDB, `sql_only` tests are skipped with their reason, and `emulator_gap` tests
    too on the emulator (they must pass on a real MongoDB)."""
    if not on_mongodb():
        return
    for item in items:
        for marker in item.iter_markers("sql_only"):
            item.add_marker(pytest.mark.skip(reason=f"SQL only: {marker.args[0]}"))
        if on_emulator():
            for marker in item.iter_markers("emulator_gap"):
                item.add_marker(pytest.mark.skip(reason=f"emulator gap: {marker.args[0]}"))
