"""manage.py check_servers: its exit code, its --fail-on, and a progress count that matches
its table (refused and skipped servers included)."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from servers.models import McpServer

HTTP = McpServer.Transport.STREAMABLE_HTTP
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _own_cache(private_cache: None) -> None:
    pass


def check(*args: str) -> tuple[list[str], str]:
    """Run the command: its table's rows split into cells, and its stderr (progress)."""
    out, err = StringIO(), StringIO()
    call_command("check_servers", *args, stdout=out, stderr=err)
    return out.getvalue().splitlines(), err.getvalue()


def rows(lines: list[str]) -> dict[str, str]:
    """SERVER -> OUTCOME from the table's lines."""
    return {line.split()[0]: line.split()[1] for line in lines[1:]}


def test_it_exits_zero_when_every_server_is_healthy(make_server, sdk_http_url) -> None:
    make_server(name="good", transport_type=HTTP, url=sdk_http_url)

    lines, _ = check("--all")

    assert rows(lines) == {"good": "healthy"}


def test_it_exits_non_zero_when_a_server_is_not_healthy(
    make_server, sdk_http_url, refused_url
) -> None:
    make_server(name="good", transport_type=HTTP, url=sdk_http_url)
    make_server(name="bad", transport_type=HTTP, url=refused_url)
    out = StringIO()

    with pytest.raises(CommandError, match=r"^1 of 2 server\(s\) failed \(unreachable 1\)$") as exc:
        call_command("check_servers", "--all", stdout=out, stderr=StringIO())

    assert exc.value.returncode == 1
    assert rows(out.getvalue().splitlines()) == {"bad": "unreachable", "good": "healthy"}


def test_a_disabled_server_does_not_fail_it(make_server, sdk_http_url) -> None:
    make_server(name="off", transport_type=HTTP, url=sdk_http_url, is_enabled=False)

    lines, _ = check("--name", "off")

    assert rows(lines) == {"off": "disabled"}


def test_fail_on_chooses_the_outcomes_that_fail(make_server, refused_url) -> None:
    make_server(name="bad", transport_type=HTTP, url=refused_url)

    lines, _ = check("--all", "--fail-on", "timeout,protocol_error")
    with pytest.raises(CommandError, match=r"unreachable 1"):
        check("--all", "--fail-on", "unreachable")

    assert rows(lines) == {"bad": "unreachable"}


def test_fail_on_none_never_fails(make_server, refused_url) -> None:
    make_server(name="bad", transport_type=HTTP, url=refused_url)

    lines, _ = check("--all", "--fail-on", "none")

    assert rows(lines) == {"bad": "unreachable"}


def test_fail_on_rejects_an_unknown_outcome() -> None:
    with pytest.raises(CommandError, match=r"unknown outcome sick; use 'none' or some of: healthy"):
        check("--all", "--fail-on", "healthy,sick")


def test_the_progress_counts_every_row_of_the_table(make_server, sdk_http_url) -> None:
    """Refused servers (disabled, no credential) and one another check holds are rows too:
    the count once read "checked 1/1" above a 4-row table."""
    make_server(name="good", transport_type=HTTP, url=sdk_http_url)
    make_server(name="off", transport_type=HTTP, url=sdk_http_url, is_enabled=False)
    make_server(name="locked", transport_type=HTTP, url=sdk_http_url,
                auth_type=McpServer.AuthType.BEARER)  # no token stored  # fmt: skip
    make_server(name="busy", transport_type=HTTP, url=sdk_http_url, check_claim="a-worker",
                check_claimed_until=timezone.now() + timedelta(minutes=1))  # fmt: skip
    names = ["--name", "good", "--name", "off", "--name", "locked", "--name", "busy"]

    with pytest.raises(CommandError, match=r"2 of 4 server\(s\) failed") as exc:
        call_command("check_servers", *names, "--fail-on", "auth_required,skipped",
                     stdout=(out := StringIO()), stderr=(err := StringIO()))  # fmt: skip

    assert err.getvalue().strip().rsplit("\r", 1)[-1] == "checked 4/4"
    assert rows(out.getvalue().splitlines()) == {
        "busy": "skipped", "good": "healthy", "locked": "auth_required", "off": "disabled"
    }  # fmt: skip
    assert "auth_required 1, skipped 1" in str(exc.value)


def test_the_progress_counts_across_chunks(make_server, sdk_http_url) -> None:
    for i in range(3):
        make_server(name=f"s{i}", transport_type=HTTP, url=sdk_http_url)

    _, progress = check("--all", "--concurrency", "2")  # two chunks: 2 servers, then 1

    assert progress.strip().rsplit("\r", 1)[-1] == "checked 3/3"
