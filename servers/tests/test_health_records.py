"""What a check writes: cache always, database only on meaningful events, audit on changes."""

import json
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from audit.models import AuditEvent
from servers import services
from servers.models import McpServer

HTTP = McpServer.Transport.STREAMABLE_HTTP
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _own_cache(private_cache: None) -> None:
    pass


class WriteCounter:
    def __init__(self) -> None:
        self.writes: list[str] = []

    def __call__(self, execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        if not sql.lstrip().upper().startswith("SELECT"):
            self.writes.append(sql)
        return execute(sql, params, many, context)


def test_it_marks_a_server_error_after_the_failure_threshold(
    make_server, refused_url, settings
) -> None:
    settings.MCPCONTROL_HEALTH_FAILURE_THRESHOLD = 2
    server = make_server(transport_type=HTTP, url=refused_url, status=McpServer.Status.ACTIVE)

    services.server_check(server_id=server.id)
    server.refresh_from_db()
    assert server.status == McpServer.Status.ACTIVE
    services.server_check(server_id=server.id)
    server.refresh_from_db()

    assert server.status == McpServer.Status.ERROR
    assert server.consecutive_failures == 2


def test_it_records_the_error_of_a_failed_check(make_server, refused_url) -> None:
    server = make_server(transport_type=HTTP, url=refused_url)

    services.server_check(server_id=server.id)
    server.refresh_from_db()

    assert server.last_error_at is not None
    assert server.error_message.startswith("unreachable: cannot connect")


def test_it_returns_to_active_on_recovery(make_server, sdk_http_url) -> None:
    server = make_server(
        transport_type=HTTP, url=sdk_http_url, status=McpServer.Status.ERROR,
        consecutive_failures=5, error_message="unreachable: down",
    )  # fmt: skip

    services.server_check(server_id=server.id)
    server.refresh_from_db()

    assert (server.status, server.consecutive_failures, server.error_message) == ("active", 0, "")
    assert AuditEvent.objects.filter(action=AuditEvent.Action.STATUS_CHANGED).count() == 1


def test_it_audits_the_diff_when_tools_change(
    make_server, changing_http_url, tools_file: Path
) -> None:
    server = make_server(transport_type=HTTP, url=changing_http_url)
    services.server_check(server_id=server.id)
    tools_file.write_text(json.dumps([
        {"name": "one", "description": "1", "inputSchema": {"type": "object", "required": ["x"]}},
        {"name": "two", "description": "2", "inputSchema": {"type": "object"}},
    ]))  # fmt: skip

    result = services.server_check(server_id=server.id)

    assert result is not None and result.tools_changed
    event = AuditEvent.objects.filter(action=AuditEvent.Action.TOOLS_CHANGED).first()
    assert event is not None and event.entity_id == str(server.id)
    assert event.changes["added"] == ["two"] and event.changes["removed"] == []
    assert event.changes["changed"]["one"]["new"]["inputSchema"]["required"] == ["x"]


def test_it_does_not_audit_an_unchanged_tool_list(make_server, sdk_http_url) -> None:
    server = make_server(transport_type=HTTP, url=sdk_http_url)
    services.server_check(server_id=server.id)

    services.server_check(server_id=server.id)

    assert AuditEvent.objects.filter(action=AuditEvent.Action.TOOLS_CHANGED).count() == 1


@pytest.mark.sql_only("counts SQL statements (connection.execute_wrapper)")
def test_it_writes_only_the_claim_for_a_steady_healthy_server(make_server, sdk_http_url) -> None:
    server = make_server(transport_type=HTTP, url=sdk_http_url)
    services.server_check(server_id=server.id)
    counter = WriteCounter()

    with connection.execute_wrapper(counter):
        result = services.server_check(server_id=server.id)

    assert result is not None and result.outcome == "healthy"
    # claim, the check's history row, release: nothing about the server row itself
    assert [sql.split()[0].upper() for sql in counter.writes] == ["UPDATE", "INSERT", "UPDATE"]


@pytest.mark.sql_only("counts SQL statements (connection.execute_wrapper)")
def test_it_stores_a_chunks_changes_in_one_transaction(make_server, sdk_http_url) -> None:
    servers = [make_server(transport_type=HTTP, url=sdk_http_url) for _ in range(3)]
    counter = WriteCounter()

    with connection.execute_wrapper(counter):
        checks = services.servers_check(server_ids=[s.id for s in servers], concurrency=3)

    verbs = [sql.split()[0].upper() for sql in counter.writes]
    assert all(c.tools_changed and c.db_writes for c in checks)
    assert verbs.count("UPDATE") == 1 + 3 + 1  # claim, one guarded write per server, release
    assert verbs.count("INSERT") == 2  # the 3 audit events, the 3 checks' history rows
    assert verbs.count("SAVEPOINT") + verbs.count("BEGIN") == 1  # one transaction
    assert AuditEvent.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_it_drops_the_write_and_its_audit_when_the_claim_was_lost(
    make_server, sdk_http_url
) -> None:
    server = make_server(transport_type=HTTP, url=sdk_http_url)

    def take_over(done: int, total: int) -> None:
        # Between the probe and the write, as when our lease expired and another worker
        # claimed the server; from another thread since this one runs the event loop.
        def claim() -> None:
            McpServer.objects.filter(id=server.id).update(
                check_claim="other-worker",
                check_claimed_until=timezone.now() + timedelta(minutes=1),
            )
            connection.close()

        thread = threading.Thread(target=claim)
        thread.start()
        thread.join()

    checks = services.servers_check(server_ids=[server.id], concurrency=1, progress=take_over)

    assert checks[0].outcome == "healthy" and checks[0].db_writes == []
    server.refresh_from_db()
    assert (server.tools, server.last_checked_at) == ([], None)
    assert server.check_claim == "other-worker"  # the other worker's claim, left alone
    assert not AuditEvent.objects.exists()


def test_it_keeps_the_detailed_outcome_in_the_cache(make_server, not_mcp_url) -> None:
    server = make_server(transport_type=HTTP, url=not_mcp_url)

    services.server_check(server_id=server.id)

    state = services.server_health_state(server=server)
    assert state["outcome"] == "protocol_error"
    assert state["connected"] is False and state["checked_at"]


def test_it_returns_quietly_when_another_check_holds_the_claim(make_server, sdk_http_url) -> None:
    server = make_server(
        transport_type=HTTP, url=sdk_http_url, check_claim="other",
        check_claimed_until=timezone.now() + timedelta(minutes=1),
    )  # fmt: skip

    assert services.server_check(server_id=server.id) is None


def test_it_takes_over_an_expired_claim(make_server, sdk_http_url) -> None:
    lapsed = timezone.now() - timedelta(seconds=1)
    server = make_server(
        transport_type=HTTP, url=sdk_http_url, check_claim="dead-worker", check_claimed_until=lapsed
    )

    assert services.server_check(server_id=server.id) is not None
    server.refresh_from_db()
    assert (server.check_claim, server.check_claimed_until) == ("", None)


@pytest.mark.django_db(transaction=True)
def test_a_claim_lasts_twice_the_checks_worst_time(make_server, sdk_http_url) -> None:
    server = make_server(transport_type=HTTP, url=sdk_http_url, init_timeout_ms=2000,
                         timeout_ms=3000)  # fmt: skip
    leases = []

    def look(done: int, total: int) -> None:
        # From another thread: this one runs the event loop.
        thread = threading.Thread(target=lambda: leases.append(
            McpServer.objects.get(pk=server.pk).check_claimed_until))  # fmt: skip
        thread.start()
        thread.join()

    before = timezone.now()
    services.servers_check(server_ids=[server.id], concurrency=1, progress=look)

    # 2 x (2 s + 3 s of timeouts + 5 s close grace + 10 s credential pre-step) = 40 s
    assert timedelta(seconds=39) < leases[0] - before < timedelta(seconds=42)


def test_it_checks_every_enabled_server(make_server, sdk_http_url, refused_url) -> None:
    make_server(transport_type=HTTP, url=sdk_http_url)
    make_server(transport_type=HTTP, url=refused_url)
    make_server(transport_type=HTTP, url=sdk_http_url, is_enabled=False)

    summary = services.servers_check_all(concurrency=4)

    assert summary["checked"] == 2
    assert summary["outcomes"] == {"healthy": 1, "unreachable": 1}


def test_it_stores_a_tool_list_with_nul_characters_without_them(
    make_server, changing_http_url, tools_file: Path
) -> None:
    tools_file.write_text(json.dumps([
        {"name": "odd", "description": "a\u0000b", "inputSchema": {"type": "object", "title": "t\u0000"}},
    ]))  # fmt: skip
    server = make_server(transport_type=HTTP, url=changing_http_url)

    result = services.server_check(server_id=server.id)

    assert result is not None and result.outcome == "healthy"
    stored = McpServer.objects.get(pk=server.id).tools
    assert stored[0]["description"] == "ab"
    assert stored[0]["inputSchema"]["title"] == "t"
