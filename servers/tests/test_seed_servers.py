import json
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import CommandError, call_command

from servers.models import McpServer

pytestmark = pytest.mark.django_db

GITHUB = {
    "description": "GitHub tools",
    "tags": ["code"],
    "transport": {"type": "streamable-http", "url": "https://api.example.com/mcp", "headers": {"X-Team": "a"}},
    "requires_oauth": True,
    "oauth": {"authorization_url": "https://auth.example.com/authorize", "token_url": "https://auth.example.com/token",
              "client_id": "gh-client", "client_secret": "gh-secret", "scope": "repo"},
    "timeout": 20000,
    "chat_menu": False,
    "custom_user_vars": {"ORG": {"title": "Organization", "description": "GitHub org", "required": True}},
}  # fmt: skip
FILESYSTEM = {
    "transport": {"type": "stdio", "command": "npx", "args": ["-y", "server-filesystem", "/tmp"], "env": {"A": "1"}, "stderr": "capture"},
    "startup": False,
    "scope": "private_user",
    "server_instructions": "Use for local files.",
}  # fmt: skip


@pytest.fixture
def admin_user() -> User:
    return User.objects.create_superuser(username="root", password="pw-for-tests-only")


@pytest.fixture
def servers_dir(tmp_path: Path) -> Path:
    (tmp_path / "github.json").write_text(json.dumps(GITHUB))
    (tmp_path / "filesystem.json").write_text(json.dumps(FILESYSTEM))
    return tmp_path


def seed(directory: Path, *extra: str) -> str:
    out = StringIO()
    call_command(
        "seed_servers", "--servers-dir", str(directory), "--admin-user", "root", *extra, stdout=out
    )
    return out.getvalue()


def test_it_creates_one_server_per_file(admin_user, servers_dir):
    output = seed(servers_dir)

    assert "github.json: created" in output
    assert "2 created" in output
    github = McpServer.objects.get(name="github")
    assert github.auth_type == "oauth"
    assert github.oauth_client_secret.reveal() == "gh-secret"
    assert github.timeout_ms == 20000
    assert McpServer.objects.get(name="filesystem").owner == admin_user


def test_a_key_in_no_seed_fails_the_file_naming_it(admin_user, servers_dir):
    (servers_dir / "extra.json").write_text(json.dumps({**GITHUB, "homepage": "https://x"}))
    out = StringIO()

    with pytest.raises(CommandError):
        call_command("seed_servers", "--servers-dir", str(servers_dir), "--admin-user", "root",
                     stdout=out)  # fmt: skip

    assert "extra.json: failed (homepage: Unknown field" in out.getvalue()
    assert not McpServer.objects.filter(name="extra").exists()


def test_a_second_run_creates_no_duplicates(admin_user, servers_dir):
    seed(servers_dir)

    output = seed(servers_dir)

    assert McpServer.objects.count() == 2
    assert "2 unchanged" in output


def test_without_force_a_changed_file_is_reported_not_applied(admin_user, servers_dir):
    seed(servers_dir)
    (servers_dir / "github.json").write_text(json.dumps({**GITHUB, "description": "changed"}))

    output = seed(servers_dir)

    assert "differs in description; use --force" in output
    assert McpServer.objects.get(name="github").description == "GitHub tools"


def test_force_updates_existing_servers(admin_user, servers_dir):
    seed(servers_dir)
    (servers_dir / "github.json").write_text(json.dumps({**GITHUB, "description": "changed"}))

    output = seed(servers_dir, "--force")

    assert "github.json: updated (changed description)" in output
    server = McpServer.objects.get(name="github")
    assert server.description == "changed"
    assert server.version == 2


def test_dry_run_writes_nothing(admin_user, servers_dir):
    output = seed(servers_dir, "--dry-run")

    assert "would create" in output
    assert McpServer.objects.count() == 0


def test_a_malformed_file_is_reported_while_the_rest_import(admin_user, servers_dir):
    (servers_dir / "broken.json").write_text('{"transport": {"type": "stdio",')
    (servers_dir / "badurl.json").write_text(
        json.dumps({"transport": {"type": "sse", "url": "ftp://x"}})
    )

    with pytest.raises(CommandError, match="2 file"):
        seed(servers_dir)

    assert set(McpServer.objects.values_list("name", flat=True)) == {"github", "filesystem"}


def test_failures_name_the_file_and_field(admin_user, servers_dir, capsys):
    (servers_dir / "badurl.json").write_text(
        json.dumps({"transport": {"type": "sse", "url": "ftp://x"}})
    )
    (servers_dir / "badtype.json").write_text(json.dumps({"transport": {"type": "carrier-pigeon"}}))
    out = StringIO()

    with pytest.raises(CommandError):
        call_command(
            "seed_servers", "--servers-dir", str(servers_dir), "--admin-user", "root", stdout=out
        )

    assert (
        "badurl.json: failed (transport.url: A sse URL must start with http:// or https://"
        in out.getvalue()
    )
    assert 'badtype.json: failed (transport.type: "carrier-pigeon" is not a valid choice.' in (
        out.getvalue()
    )


def test_an_unknown_admin_user_is_a_clear_error(servers_dir):
    with pytest.raises(CommandError, match="--admin-user: no user named 'root'"):
        seed(servers_dir)


def test_export_then_seed_round_trips(admin_user, servers_dir, tmp_path):
    seed(servers_dir)
    first, second = tmp_path / "first", tmp_path / "second"
    call_command("export_servers", "--out", str(first), stdout=StringIO())
    McpServer.objects.all().delete()

    seed(first)
    call_command("export_servers", "--out", str(second), stdout=StringIO())

    assert sorted(p.name for p in first.iterdir()) == ["filesystem.json", "github.json"]
    for path in first.iterdir():
        assert json.loads(path.read_text()) == json.loads((second / path.name).read_text())
    # The names survive the trip; the values, being secrets, were never in the files.
    assert McpServer.objects.get(name="filesystem").env == {"A": ""}


def test_export_then_seed_keeps_env_and_header_values(admin_user, servers_dir, tmp_path):
    seed(servers_dir)
    call_command("export_servers", "--out", str(tmp_path / "out"), stdout=StringIO())

    output = seed(tmp_path / "out", "--force")

    assert "2 unchanged" in output
    assert McpServer.objects.get(name="filesystem").env == {"A": "1"}
    assert McpServer.objects.get(name="github").headers == {"X-Team": "a"}


def test_seeding_an_export_with_a_new_env_name_keeps_the_stored_values(
    admin_user, servers_dir, tmp_path
):
    seed(servers_dir)
    call_command("export_servers", "--out", str(tmp_path / "out"), stdout=StringIO())
    exported = json.loads((tmp_path / "out" / "filesystem.json").read_text())
    exported["transport"]["env"]["B"] = "2"
    (tmp_path / "out" / "filesystem.json").write_text(json.dumps(exported))

    output = seed(tmp_path / "out", "--force")

    assert "filesystem.json: updated (changed env)" in output
    assert McpServer.objects.get(name="filesystem").env == {"A": "1", "B": "2"}


def test_export_writes_env_and_header_names_without_values(admin_user, servers_dir, tmp_path):
    seed(servers_dir)

    call_command("export_servers", "--out", str(tmp_path / "out"), stdout=StringIO())

    filesystem = json.loads((tmp_path / "out" / "filesystem.json").read_text())
    github = json.loads((tmp_path / "out" / "github.json").read_text())
    assert filesystem["transport"]["env"] == {"A": ""}
    assert github["transport"]["headers"] == {"X-Team": ""}


def test_export_never_contains_an_env_or_header_value(admin_user, tmp_path):
    McpServer.objects.create(
        name="secretive", path="/secretive", transport_type="stdio",
        command="npx", env={"GITHUB_TOKEN": "ghp_envValue"}, headers={"X-Api-Key": "hdr-value"},
    )  # fmt: skip

    call_command("export_servers", "--out", str(tmp_path / "out"), stdout=StringIO())

    text = (tmp_path / "out" / "secretive.json").read_text()
    assert "ghp_envValue" not in text
    assert "hdr-value" not in text


def test_export_omits_secrets(admin_user, servers_dir, tmp_path):
    seed(servers_dir)

    call_command("export_servers", "--out", str(tmp_path / "out"), stdout=StringIO())

    text = (tmp_path / "out" / "github.json").read_text()
    assert "gh-secret" not in text
    assert json.loads(text)["oauth"]["client_id"] == "gh-client"  # public (RFC 6749 2.2)


def test_import_mcp_config_creates_stdio_and_remote_servers(tmp_path):
    config = {"mcpServers": {
        "fs": {"command": "npx", "args": ["-y", "server-filesystem"], "env": {"ROOT": "/srv"}},
        "remote": {"type": "http", "url": "https://mcp.example.com/mcp", "headers": {"X-A": "b"}},
        "feed": {"type": "sse", "url": "https://feed.example.com/sse"},
    }}  # fmt: skip
    path = tmp_path / "claude.json"
    path.write_text(json.dumps(config))

    call_command("import_mcp_config", str(path), stdout=StringIO())

    assert McpServer.objects.get(name="fs").transport_type == "stdio"
    assert McpServer.objects.get(name="remote").headers == {"X-A": "b"}
    assert McpServer.objects.get(name="feed").transport_type == "sse"


def test_import_mcp_config_reports_a_bad_entry_and_imports_nothing(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"mcpServers": {"ok": {"command": "x"}, "bad": {"type": "sse"}}}))
    out = StringIO()

    with pytest.raises(CommandError, match=r"1 server.*nothing was imported"):
        call_command("import_mcp_config", str(path), stdout=out)

    assert "bad: failed (url: A sse server needs a URL.)" in out.getvalue()
    assert not McpServer.objects.exists()


def test_import_mcp_config_dry_run_writes_nothing(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"mcpServers": {"ok": {"command": "x"}}}))
    out = StringIO()

    call_command("import_mcp_config", str(path), "--dry-run", stdout=out)

    assert "ok: created" in out.getvalue()
    assert not McpServer.objects.exists()


def test_import_mcp_config_rejects_a_file_without_mcp_servers(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("[]")

    with pytest.raises(CommandError, match="mcpServers: must be an object"):
        call_command("import_mcp_config", str(path))


def test_export_then_seed_keeps_each_servers_owner_and_group(admin_user, tmp_path):
    """A re-seed with --force used to move private servers to the seeding admin."""
    bob, team = User.objects.create_user(username="bob"), Group.objects.create(name="team")
    McpServer.objects.create(name="notes", path="/notes", url="https://n.example.com/mcp",
                             scope="private_user", owner=bob, group=team)  # fmt: skip
    call_command("export_servers", "--out", str(tmp_path / "out"), stdout=StringIO())

    kept = seed(tmp_path / "out", "--force")
    McpServer.objects.all().delete()
    seed(tmp_path / "out")

    assert "notes.json: unchanged" in kept
    server = McpServer.objects.get(name="notes")
    assert (server.owner, server.group, server.scope) == (bob, team, "private_user")
