"""Check history: every sweep check leaves a CheckResult row, pruned after the retention;
GET /servers/{id}/history shows them to whoever may see the server."""

from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from servers import services, tasks
from servers.models import CheckResult
from tests.factories import McpServerFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _own_cache(private_cache: None) -> None:
    pass


def test_a_sweep_writes_one_history_row_per_check(make_server, sdk_http_url, refused_url):
    good = make_server(url=sdk_http_url)
    bad = make_server(url=refused_url)

    services.servers_check_all(concurrency=4)

    rows = {r.server_id: r for r in CheckResult.objects.all()}
    assert set(rows) == {good.id, bad.id}
    assert (rows[good.id].outcome, rows[good.id].error_class) == ("healthy", "")
    assert rows[good.id].tool_count and rows[good.id].duration_ms is not None
    assert (rows[bad.id].outcome, rows[bad.id].error_class) == (
        "unreachable",
        "connection_refused",
    )


def test_a_steady_sweep_still_records_its_checks(make_server, sdk_http_url):
    make_server(url=sdk_http_url)

    services.servers_check_all(concurrency=4)
    services.servers_check_all(concurrency=4)  # nothing changed: no server row written

    assert CheckResult.objects.count() == 2


def test_a_chunk_inserts_its_history_in_one_statement(make_server, sdk_http_url):
    ids = [make_server(url=sdk_http_url).id for _ in range(3)]
    services.servers_check(server_ids=ids, concurrency=3)  # cold: tools written
    with CaptureQueriesContext(connection) as queries:
        services.servers_check(server_ids=ids, concurrency=3)

    # INSERT INTO "servers_checkresult" on SQL, db.servers_checkresult.insert_many on MongoDB
    starts = ('INSERT INTO "servers_checkresult"', "db.servers_checkresult.insert")
    inserts = [q for q in queries if q["sql"].startswith(starts)]
    assert len(inserts) == 1
    assert CheckResult.objects.count() == 6


def test_the_prune_task_keeps_only_the_retention_window(settings):
    settings.MCPCONTROL_CHECK_HISTORY_DAYS = 7
    server = McpServerFactory()
    now = timezone.now()
    for age in (1, 6, 8, 30):
        CheckResult.objects.create(
            server=server, checked_at=now - timedelta(days=age), outcome="healthy"
        )

    deleted = tasks.check_results_prune()

    assert deleted == 2
    kept = sorted((now - r.checked_at).days for r in CheckResult.objects.all())
    assert kept == [1, 6]


def test_the_prune_runs_from_the_beat_schedule():
    from io import StringIO

    from django.core.management import call_command
    from django_celery_beat.models import PeriodicTask

    call_command("ensure_schedules", stdout=StringIO())

    row = PeriodicTask.objects.get(task="servers.tasks.check_results_prune")
    assert row.enabled and row.interval.every == 3600


def _history(client, server_id, **params):
    return client.get(f"/api/v1/servers/{server_id}/history", params)


def test_history_lists_a_servers_checks_newest_first(user_api):
    server = McpServerFactory()
    now = timezone.now()
    for minutes in (30, 10, 20):
        CheckResult.objects.create(
            server=server, checked_at=now - timedelta(minutes=minutes), outcome="healthy"
        )

    body = _history(user_api, server.id).json()

    ages = [(now - timezone.datetime.fromisoformat(c["checked_at"])).seconds // 60
            for c in body["checks"]]  # fmt: skip
    assert ages == [10, 20, 30]
    assert body["pagination"]["total"] == 3


def test_history_filters_by_since(user_api):
    server = McpServerFactory()
    with time_machine.travel("2026-11-30 10:00Z", tick=False):
        CheckResult.objects.create(server=server, checked_at=timezone.now(), outcome="timeout")
    CheckResult.objects.create(server=server, checked_at=timezone.now(), outcome="healthy")

    body = _history(user_api, server.id, since="2026-11-30T11:00:00Z").json()

    assert [c["outcome"] for c in body["checks"]] == ["healthy"]


def test_history_refuses_a_bad_since(user_api):
    server = McpServerFactory()

    response = _history(user_api, server.id, since="2026-13-01T00:00:00")

    assert response.status_code == 400
    assert response.json()["error"]


def test_history_of_another_users_private_server_is_404(user_api):
    other = UserFactory()
    server = McpServerFactory(scope="private_user", owner=other)
    CheckResult.objects.create(server=server, checked_at=timezone.now(), outcome="healthy")

    assert _history(user_api, server.id).status_code == 404
