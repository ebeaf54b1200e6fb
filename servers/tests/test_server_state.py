"""One status vocabulary: McpServer.state from is_enabled, status and the failure counters,
the failure in plain words, and the same word in the API and the check_servers table."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from servers.models import CheckResult, McpServer
from servers.models.words import error_class, plain_error
from tests.factories import McpServerFactory

pytestmark = pytest.mark.django_db


def _server(**fields):
    return McpServer(name="s", url="http://127.0.0.1:8765/mcp", **fields)


@pytest.mark.parametrize(
    ("fields", "state"),
    [
        ({}, "never_checked"),
        ({"last_connected_at": timezone.now()}, "healthy"),
        ({"is_enabled": False, "last_connected_at": timezone.now()}, "disabled"),
        ({"consecutive_failures": 1, "error_message": "unreachable: cannot connect"}, "degraded"),
        ({"consecutive_failures": 1, "error_message": "timeout: no answer"}, "degraded"),
        ({"consecutive_failures": 3, "error_message": "unreachable: x"}, "unreachable"),
        ({"consecutive_failures": 3, "error_message": "timeout: x"}, "timeout"),
        ({"consecutive_failures": 4, "error_message": "protocol_error: x"}, "protocol_error"),
        ({"consecutive_failures": 1, "error_message": "auth_required: HTTP 401"}, "auth_required"),
        ({"status": "error", "consecutive_failures": 1, "error_message": "timeout: x"}, "timeout"),
        ({"consecutive_failures": 3, "error_message": "garbled"}, "protocol_error"),
    ],
)
def test_state_maps_each_case(fields, state, settings):
    settings.MCPCONTROL_HEALTH_FAILURE_THRESHOLD = 3

    assert _server(**fields).state == state


def test_a_stdio_server_not_run_here_is_disabled(settings):
    settings.MCPCONTROL_ALLOW_STDIO = False

    assert McpServer(transport_type="stdio", command="x").state == "disabled"


def test_a_refused_connection_reads_in_plain_words():
    server = _server(
        consecutive_failures=1,
        error_message="unreachable: cannot connect: [Errno 111] Connection refused",
    )

    assert server.state_message == "cannot connect to 127.0.0.1:8765: connection refused"
    assert server.last_error_detail == "cannot connect: [Errno 111] Connection refused"


@pytest.mark.parametrize(
    ("outcome", "message", "cause", "words"),
    [
        ("timeout", "no answer to initialize within 5s", "timeout", "no answer from h:1 within 5 s"),
        ("auth_required", "upstream answered HTTP 401", "http_401", "h:1 refused our credentials"),
        ("protocol_error", "not a working MCP server: x", "not_mcp", "h:1 does not speak MCP"),
        ("unreachable", "cannot connect: [Errno -2] Name or service not known", "dns",
         "cannot connect to h:1: the host name does not resolve"),
        ("unreachable", "URL refused: private address", "url_refused", "the URL is not allowed"),
    ],
)  # fmt: skip
def test_failures_get_a_cause_and_plain_words(outcome, message, cause, words):
    assert error_class(outcome, message) == cause
    assert plain_error(where="h:1", outcome=outcome, message=message).startswith(words)


def test_the_api_shows_the_state_beside_the_seed_status(user_api):
    server = McpServerFactory(
        consecutive_failures=5, status="error", error_message="timeout: no answer within 5s"
    )

    listed = user_api.get("/api/v1/servers").json()["servers"][0]
    detail = user_api.get(f"/api/v1/servers/{server.id}").json()

    assert (listed["status"], listed["state"]) == ("error", "timeout")
    assert detail["state_message"].startswith("no answer from")


def test_check_servers_prints_the_state_and_plain_words(make_server, refused_url, private_cache):
    make_server(name="bad", url=refused_url)
    out = StringIO()

    call_command("check_servers", "--all", "--fail-on", "none", stdout=out, stderr=StringIO())

    header, row = out.getvalue().splitlines()
    assert "STATE" in header
    assert "degraded" in row and "connection refused" in row
    assert CheckResult.objects.filter(outcome="unreachable").exists()
