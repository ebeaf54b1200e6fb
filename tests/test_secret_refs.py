"""mcpcontrol.lib.secret_refs on its own: which values are references, the literal: escape,
the file rules, and how often a remote store is asked."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcpcontrol.lib import secret_refs
from mcpcontrol.lib.secret_refs import RefError, deref, parse, quote
from tests.peers.vault_peer import VaultPeer, run_vault_peer


@pytest.fixture
def allow_all(settings) -> Iterator[None]:
    settings.MCPCONTROL_SECRET_REFS = ["*"]
    yield
    secret_refs.forget_cached()


@pytest.mark.parametrize(
    ("value", "scheme", "target", "key"),
    [
        ("env:GITHUB_TOKEN", "env", "GITHUB_TOKEN", ""),
        ("file:/run/secrets/mcp/token", "file", "/run/secrets/mcp/token", ""),
        ("aws-sm:prod/github", "aws-sm", "prod/github", ""),
        ("aws-sm:arn:aws:secretsmanager:eu-west-1:1:secret:gh-Ab1#token", "aws-sm",
         "arn:aws:secretsmanager:eu-west-1:1:secret:gh-Ab1", "token"),
        ("vault:secret/mcp/github#token", "vault", "secret/mcp/github", "token"),
    ],
)  # fmt: skip
def test_it_parses_each_scheme(value, scheme, target, key):
    ref = parse(value)

    assert ref is not None
    assert (ref.scheme, ref.target, ref.key) == (scheme, target, key)


@pytest.mark.parametrize(
    "value",
    [
        "ghp_plainToken", "Bearer abc", "https://example.com/x", "file:///data/app.db",
        "localhost:6379", "my-host:8080", "appid:key", "ENV:HOME", "literal:env:HOME", "",
    ],
)  # fmt: skip
def test_plain_values_are_not_references(value):
    assert parse(value) is None


@pytest.mark.parametrize(
    "value",
    [
        "gcp-sm:projects/p/secrets/s", "azure-kv:vault/secret", "aws-ssm:/prod/db",
        "env:", "env:BAD-NAME", "file:relative", "file:/a/../b", "file:/a//b", "file:/a/./b",
        "vault:secret#key", "vault:secret/path", "vault:secret/../sys/x#k", "vault:secret/.x#k",
        "aws-sm:", "aws-sm:name#",
    ],
)  # fmt: skip
def test_it_refuses_unknown_schemes_and_bad_syntax(value):
    with pytest.raises(RefError):
        parse(value)


@given(st.text())
def test_quote_keeps_any_value_exactly_as_it_was(value):
    assert deref(quote(value)) == value


def test_quote_leaves_a_plain_value_unchanged():
    assert quote("ghp_plainToken") == "ghp_plainToken"
    assert quote("env:HOME") == "literal:env:HOME"


def test_the_allow_list_is_checked_at_every_use(settings, monkeypatch):
    monkeypatch.setenv("MCP_SECRET_A", "a")
    settings.MCPCONTROL_SECRET_REFS = ["env:MCP_SECRET_*"]
    assert deref("env:MCP_SECRET_A") == "a"

    settings.MCPCONTROL_SECRET_REFS = ["env:OTHER_*"]

    with pytest.raises(RefError, match="not allowed here"):
        deref("env:MCP_SECRET_A")


def test_a_file_reference_drops_one_trailing_newline(allow_all, tmp_path: Path):
    (tmp_path / "token").write_text("s3cret\n")

    assert deref(f"file:{tmp_path}/token") == "s3cret"


@pytest.mark.parametrize(
    ("content", "problem"),
    [("line one\nline two\n", "must be one line"), ("x" * 70_000, "larger than")],
)
def test_a_file_reference_refuses_what_cannot_be_one_credential(
    allow_all, tmp_path: Path, content, problem
):
    (tmp_path / "token").write_text(content)

    with pytest.raises(RefError, match=problem):
        deref(f"file:{tmp_path}/token")


def test_a_file_reference_refuses_a_fifo_instead_of_blocking(allow_all, tmp_path: Path):
    os.mkfifo(tmp_path / "pipe")

    with pytest.raises(RefError, match="not a regular file"):
        deref(f"file:{tmp_path}/pipe")


@pytest.fixture
def vault(settings, allow_all) -> Iterator[VaultPeer]:
    with run_vault_peer() as peer:
        settings.MCPCONTROL_VAULT_ADDR, settings.MCPCONTROL_VAULT_TOKEN = peer.url, peer.token
        settings.MCPCONTROL_SECRET_REFS_CACHE_SECONDS = 60
        peer.secrets["secret/mcp/github"] = {"token": "s3cret"}
        yield peer


def test_a_stores_answer_is_reused_for_the_cache_time(vault):
    first = deref("vault:secret/mcp/github#token")
    second = deref("vault:secret/mcp/github#token")

    assert first == second == "s3cret"
    assert len(vault.requests) == 1


def test_a_store_that_is_down_is_asked_once_not_once_per_server(vault):
    vault.sealed = True

    reasons = []
    for key in ("a", "b", "c"):
        with pytest.raises(RefError) as caught:
            deref(f"vault:secret/mcp/github#{key}")
        reasons.append(str(caught.value))

    assert reasons == ["vault reference: Vault is unreachable (VaultDown)"] * 3
    assert len(vault.requests) == 1
