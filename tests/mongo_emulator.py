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
from typing import Any, cast

import pytest
from pymongo import monitoring

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


# Collections post_migrate fills (and migrate's own record): kept between tests unless a test
# wrote to them, as SQL's rolled-back transaction keeps them.
REBUILT_BY_MIGRATE = frozenset({"django_content_type", "auth_permission", "django_migrations"})
WRITES = frozenset({"insert", "update", "delete", "findAndModify", "drop", "create",
                    "renameCollection"})  # fmt: skip


class WrittenCollections(monitoring.CommandListener):
    """Which collections the test wrote to, seen on the wire (every client, pymongo's own
    command monitoring). Without transactions, Django's TestCase ends each test with a
    `flush`: a delete of every collection and a post_migrate that rebuilds every content type
    and permission, 5 to 8 s a test on the emulator. Emptying only what the test touched gives
    the same clean state in a fraction of that."""

    def __init__(self) -> None:
        self.written: set[tuple[str, str]] = set()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name in WRITES:
            name = event.command.get(event.command_name)
            if isinstance(name, str):
                self.written.add((event.database_name, name.split(".")[-1]))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def _fast_fixture_teardown(listener: WrittenCollections) -> Any:
    from django.db import connections
    from django.test import TransactionTestCase

    full_flush = cast(Any, TransactionTestCase)._fixture_teardown

    def teardown(self: Any) -> None:
        written, listener.written = listener.written, set()
        for alias in self._databases_names(include_mirrors=False):
            database = cast(Any, connections[alias]).database
            names = {name for db, name in written if db == database.name}
            if names & REBUILT_BY_MIGRATE or self.available_apps is not None:
                full_flush(self)  # the test changed what migrate builds: rebuild it all
                listener.written.clear()
                return
            for name in sorted(names & set(database.list_collection_names())):
                if not name.startswith("system."):
                    database[name].delete_many({})
        listener.written.clear()

    return teardown


def on_emulator() -> bool:
    return os.environ.get("MCPCONTROL_TEST_MONGO_SERVER") == EMULATOR


def pytest_configure(config: pytest.Config) -> None:
    """On MongoDB, each test empties only the collections it wrote to (WrittenCollections)."""
    if not on_mongodb():
        return
    listener = WrittenCollections()
    monitoring.register(listener)
    from django.test import TransactionTestCase

    test_case = cast(Any, TransactionTestCase)  # private hooks the stubs do not declare
    test_case._fixture_teardown = _fast_fixture_teardown(listener)
    setup = test_case._fixture_setup.__func__  # a classmethod

    def fixture_setup(cls: Any) -> None:
        listener.written.clear()  # what migrate wrote before the first test stays, as on SQL
        setup(cls)

    test_case._fixture_setup = classmethod(fixture_setup)


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
