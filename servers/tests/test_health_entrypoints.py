"""Tasks, the check_servers command and the admin mixin all run the health service."""

from io import StringIO

import pytest
from django.contrib.admin import ModelAdmin, site
from django.contrib.messages.storage.fallback import FallbackStorage
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import RequestFactory

from servers import tasks
from servers.admin_health import HealthAdminMixin
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

    assert tasks.refresh_server(server.id) == "healthy"


def test_it_summarises_the_sweep_from_the_task(make_server, sdk_http_url) -> None:
    make_server(transport_type=HTTP, url=sdk_http_url)

    assert tasks.refresh_all()["outcomes"] == {"healthy": 1}


def test_it_prints_a_table_of_outcomes(make_server, sdk_http_url, refused_url) -> None:
    make_server(name="good", transport_type=HTTP, url=sdk_http_url)
    make_server(name="bad", transport_type=HTTP, url=refused_url)
    out = StringIO()

    call_command("check_servers", "--all", stdout=out, stderr=StringIO())

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

    assert [str(m) for m in request._messages] == [f"{server.name}: healthy"]  # type: ignore[attr-defined]


def test_it_shows_the_cached_outcome_in_the_list(make_server, sdk_http_url) -> None:
    server = make_server(transport_type=HTTP, url=sdk_http_url)
    tasks.refresh_server(server.id)
    server.refresh_from_db()
    admin = HealthAdmin(McpServer, site)

    assert "healthy" in admin.health_outcome(server)
    assert admin.response_time_display(server).endswith(" ms")
    assert admin.tool_count(server) == 3
    assert admin.last_error_display(server) == "—"
