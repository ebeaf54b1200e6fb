"""Tasks, the check_servers command and the admin mixin all run the health service."""

import re
from collections.abc import Iterator
from io import StringIO

import pytest
from django.contrib.admin import ModelAdmin, site
from django.contrib.messages.storage.fallback import FallbackStorage
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import RequestFactory

from mcpcontrol.celery import app
from servers import services, tasks
from servers.admin.health import HealthAdminMixin
from servers.models import McpServer

HTTP = McpServer.Transport.STREAMABLE_HTTP
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _own_cache(private_cache: None) -> None:
    pass


class HealthAdmin(HealthAdminMixin, ModelAdmin):
    actions = ["check_now"]


def test_it_checks_one_server_from_the_task(make_server, sdk_http_url) -> None:
    server = make_server(transport_type=HTTP, url=sdk_http_url)

    assert tasks.health_check_server(server.id)["outcome"] == "healthy"


def test_the_old_task_names_still_run_for_one_release(make_server, sdk_http_url) -> None:
    server = make_server(transport_type=HTTP, url=sdk_http_url)

    assert tasks.refresh_server(server.id)["outcome"] == "healthy"
    assert tasks.refresh_batch([server.id])["outcomes"] == {"healthy": 1}


@pytest.fixture
def eager_tasks() -> Iterator[None]:
    """Run enqueued tasks inline: never send them to a broker other test runs consume."""
    before = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.task_always_eager = app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = before


def test_it_fans_the_sweep_out_into_batches(
    make_server, sdk_http_url, settings, eager_tasks
) -> None:
    settings.MCPCONTROL_HEALTH_CONCURRENCY = 1
    settings.CELERY_TASK_SOFT_TIME_LIMIT = 34  # a 17 s budget: one hung server (1+1+5+10 s)
    servers = [
        make_server(transport_type=HTTP, url=sdk_http_url, init_timeout_ms=1000, timeout_ms=1000)
        for _ in range(3)
    ]

    assert tasks.health_sweep() == {"servers": 3, "batches": 3, "batch_size": 1}
    assert {services.server_health_state(server=s)["outcome"] for s in servers} == {"healthy"}


def test_it_sizes_a_batch_to_end_in_time_even_if_every_server_hangs(make_server) -> None:
    # 30 s a chunk: 15 s of timeouts, the 5 s close grace, the 10 s credential pre-step.
    make_server(init_timeout_ms=10_000, timeout_ms=5_000)
    make_server(init_timeout_ms=1_000, timeout_ms=1_000)

    sizes = [services.sweep_batch_size(concurrency=10, time_limit=t) for t in (150, 65, 10)]

    assert sizes == [40, 20, 10]  # 4 rounds at most, 2 rounds, 1 round at least


def test_the_batch_size_never_trusts_a_users_huge_timeouts(make_server) -> None:
    server = make_server()
    # Rows older than the 300 s bound (or written around validation) may hold anything.
    McpServer.objects.filter(pk=server.pk).update(
        timeout_ms=1_200_000_000, init_timeout_ms=1_000_000_000
    )

    assert services.sweep_batch_size(concurrency=10, time_limit=1000) == 10


def test_it_checks_a_batch_from_the_task(make_server, sdk_http_url, refused_url) -> None:
    ids = [make_server(transport_type=HTTP, url=url).id for url in (sdk_http_url, refused_url)]

    summary = tasks.health_check_batch(ids)

    assert summary["outcomes"] == {"healthy": 1, "unreachable": 1}


def test_it_prints_a_table_of_outcomes(make_server, sdk_http_url, refused_url) -> None:
    make_server(name="good", transport_type=HTTP, url=sdk_http_url)
    make_server(name="bad", transport_type=HTTP, url=refused_url)
    out = StringIO()

    call_command("check_servers", "--all", "--fail-on", "none", stdout=out, stderr=StringIO())

    lines = out.getvalue().splitlines()
    assert lines[0].split()[:2] == ["SERVER", "OUTCOME"]
    assert lines[1].split()[:2] == ["bad", "unreachable"]
    assert lines[2].split()[:2] == ["good", "healthy"]


def test_it_rejects_an_unknown_server_name() -> None:
    with pytest.raises(CommandError, match="No server named: nope"):
        call_command("check_servers", "--name", "nope")


def test_it_checks_the_selected_servers_from_the_admin(
    make_server, sdk_http_url, admin_user
) -> None:
    server = make_server(transport_type=HTTP, url=sdk_http_url)
    request = RequestFactory().post("/admin/servers/mcpserver/")
    request.user = admin_user
    request.session = {}  # type: ignore[assignment]
    request._messages = FallbackStorage(request)  # type: ignore[attr-defined]

    HealthAdmin(McpServer, site).check_now(request, McpServer.objects.filter(id=server.id))

    (message,) = [str(m) for m in request._messages]  # type: ignore[attr-defined]
    assert re.fullmatch(rf"{server.name}: healthy \(\d+ ms, 3 tool\(s\)\)", message)


def test_it_shows_the_cached_outcome_in_the_list(make_server, sdk_http_url) -> None:
    server = make_server(transport_type=HTTP, url=sdk_http_url)
    tasks.health_check_server(server.id)
    server.refresh_from_db()
    admin = HealthAdmin(McpServer, site)

    assert "healthy" in admin.health_outcome(server)
    assert admin.response_time_display(server).endswith(" ms")
    assert admin.tool_count(server) == 3
    assert admin.last_error_display(server) == "—"


def test_a_sweep_is_skipped_while_the_previous_one_has_batches_pending(make_server) -> None:
    ids = [make_server(init_timeout_ms=1000, timeout_ms=1000).id for _ in range(2)]
    first = services.health_sweep_plan(concurrency=1, time_limit=10)  # one server a batch

    second = services.health_sweep_plan(concurrency=1, time_limit=10)

    assert len(first.batches) == 2
    assert second.skipped == "pending" and second.batches == []
    for server_id in ids:  # the two batches run and count themselves off
        services.servers_check_batch(server_ids=[server_id], concurrency=1, sweep=True)
    assert len(services.health_sweep_plan(concurrency=1, time_limit=10).batches) == 2
