"""migrate_storage copies a real SQLite database file into another, ids, timestamps and
ciphertexts kept, and the copy reads back (decrypts) in the target. Each step is its own
process, as an operator would run it."""

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_settings import GOOD_KEY

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow

POPULATE = """
import django; django.setup()
from django.contrib.auth.models import Permission
from django.core.management import call_command
call_command("migrate", verbosity=0)
call_command("ensure_schedules", verbosity=0)
from tests.factories import AgentConnectionFactory, GrantFactory, GroupFactory, McpServerFactory, UserFactory
from tokens.models import Token
from tokens.services import token_store
alice = UserFactory(username="alice")
ops = GroupFactory(name="ops")
ops.permissions.add(Permission.objects.get(codename="view_token"))
alice.groups.add(ops)
server = McpServerFactory(name="gh", env={"API_KEY": "env-secret"}, headers={"X-Key": "hdr"})
GrantFactory(server=server, secret="grant-secret", granted_by=alice)
AgentConnectionFactory(server=server, agent__owner=alice)
for i in range(7):
    token_store(actor=alice, user=alice, type="api_key", identifier=f"svc{i}", token=f"tok-{i}")
Token.objects.filter(identifier="svc1").delete()  # a gap in the ids
"""

READ_BACK = """
import django, json; django.setup()
from django.contrib.auth import get_user_model
from django_celery_beat.models import PeriodicTask
from audit.models import AuditEvent
from credentials.models import Grant
from servers.models import McpServer
from tokens.models import Token
alice = get_user_model().objects.get(username="alice")
server = McpServer.objects.get(name="gh")
print(json.dumps({
    "tokens": {t.identifier: [t.pk, t.token.reveal(), t.created_at.isoformat()]
               for t in Token.objects.all()},
    "grant": Grant.objects.get(server=server).secret.reveal(),
    "env": server.env, "headers": server.headers,
    "perms": sorted(alice.get_all_permissions()),
    "audit": AuditEvent.objects.count(),
    "schedules": sorted(PeriodicTask.objects.values_list("name", flat=True)),
    "agents": list(server.connections.values_list("agent__owner__username", flat=True)),
}))
"""


def run(tmp_path: Path, *args: str, db: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DJANGO_", "MCPCONTROL_", "DATABASE_URL", "REDIS_URL", "MONGO_"))}  # fmt: skip
    env.update({"DJANGO_SECRET_KEY": "s" * 50, "MCPCONTROL_ENCRYPTION_KEYS": GOOD_KEY,
                "MCPCONTROL_RUN_DIR": str(tmp_path / "run"),
                "DJANGO_SETTINGS_MODULE": "mcpcontrol.settings"})  # fmt: skip
    if db is not None:
        env["DATABASE_URL"] = f"sqlite:///{db}"
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=240)  # fmt: skip


def read_back(tmp_path: Path, db: Path) -> dict:
    result = run(tmp_path, "-c", READ_BACK, db=db)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def migrate_storage(tmp_path: Path, src: Path, dst: Path, *extra: str):
    return run(tmp_path, "manage.py", "migrate_storage", "--from", f"sqlite:///{src}",
               "--to", f"sqlite:///{dst}", "--batch-size", "3", *extra)  # fmt: skip


def raw(db: Path, query: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(query).fetchall()


@pytest.fixture(scope="module")
def copied(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("migrate_storage")
    src, dst = tmp / "src.sqlite3", tmp / "dst.sqlite3"
    populated = run(tmp, "-c", POPULATE, db=src)
    assert populated.returncode == 0, populated.stderr
    result = migrate_storage(tmp, src, dst)
    return {"tmp": tmp, "src": src, "dst": dst, "result": result}


def test_it_copies_and_verifies_printing_counts_per_model(copied):
    result = copied["result"]
    assert result.returncode == 0, result.stderr
    assert "tokens.token: 6 copied" in result.stdout
    assert "servers.mcpserver: 1 copied" in result.stdout
    assert "auth.user_groups: 1 copied" in result.stdout
    assert "verified:" in result.stdout


def test_the_copy_reads_back_the_same_in_the_target(copied):
    source = read_back(copied["tmp"], copied["src"])
    target = read_back(copied["tmp"], copied["dst"])

    assert target == source
    assert target["tokens"]["svc0"][1] == "tok-0" and "svc1" not in target["tokens"]
    assert target["grant"] == "grant-secret"
    assert target["env"] == {"API_KEY": "env-secret"}
    assert "tokens.view_token" in target["perms"]
    assert target["audit"] >= 7 and target["schedules"]


def test_encrypted_values_are_copied_as_stored_not_re_encrypted(copied):
    query = "SELECT id, token FROM tokens ORDER BY id"
    assert raw(copied["dst"], query) == raw(copied["src"], query)
    query = "SELECT id, env, headers FROM mcps ORDER BY id"
    assert raw(copied["dst"], query) == raw(copied["src"], query)


def test_it_refuses_a_target_that_holds_data(copied):
    again = migrate_storage(copied["tmp"], copied["src"], copied["dst"])

    assert again.returncode != 0
    assert "already holds data" in again.stderr and "--force" in again.stderr


def test_force_replaces_the_targets_data(copied):
    again = migrate_storage(copied["tmp"], copied["src"], copied["dst"], "--force")

    assert again.returncode == 0, again.stderr
    assert raw(copied["dst"], "SELECT COUNT(*) FROM tokens") == [(6,)]


def test_a_dry_run_copies_nothing(copied, tmp_path):
    dst = tmp_path / "untouched.sqlite3"

    result = migrate_storage(copied["tmp"], copied["src"], dst, "--dry-run")

    assert result.returncode == 0, result.stderr
    assert "tokens.token: 6 (dry run)" in result.stdout
    assert raw(dst, "SELECT name FROM sqlite_master WHERE type='table'") == []


def test_verification_names_a_model_whose_rows_differ_and_fails(copied, tmp_path):
    dst = tmp_path / "damaged.sqlite3"
    dst.write_bytes(copied["dst"].read_bytes())
    with sqlite3.connect(dst) as conn:
        conn.execute(
            "DELETE FROM audit_auditevent WHERE id = (SELECT MAX(id) FROM audit_auditevent)"
        )

    result = migrate_storage(copied["tmp"], copied["src"], dst, "--verify-only")

    assert result.returncode != 0
    assert "verification failed: audit.auditevent" in result.stderr
    assert "tokens.token" not in result.stderr


def test_it_refuses_a_source_without_our_schema(tmp_path):
    result = migrate_storage(tmp_path, tmp_path / "empty.sqlite3", tmp_path / "dst.sqlite3")

    assert result.returncode != 0
    assert "the source holds no mcpcontrol schema" in result.stderr


def test_it_refuses_to_copy_between_sql_and_mongodb_saying_why(tmp_path):
    for source, target in [(f"sqlite:///{tmp_path / 'src.sqlite3'}", "mongodb://127.0.0.1:9/x"),
                           ("mongodb://127.0.0.1:9/x", f"sqlite:///{tmp_path / 'dst.sqlite3'}")]:  # fmt: skip
        result = run(tmp_path, "manage.py", "migrate_storage", "--from", source, "--to", target)

        assert result.returncode != 0
        assert "between a SQL database and MongoDB is not supported" in result.stderr
