"""Secret references (env:, file:, aws-sm:, vault:) through the real paths: saved by the API,
stored as the reference, dereferenced only where the secret is used (an agent's client
config, a health check, the OAuth client), and a reference that cannot be had makes only
its own server missing, with the reason."""

import json
import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import boto3
import pytest
from django.utils import timezone
from moto.server import ThreadedMotoServer

from audit.models import AuditEvent
from credentials import services
from credentials.models import Grant, VariableValue
from credentials.tests.conftest import credential_headers, list_tool_names, shared_grant
from mcpcontrol.lib import secret_refs
from servers import services as server_services
from servers.models import McpServer
from tests.api_fixtures import client_for
from tests.factories import AgentFactory, McpServerFactory, UserFactory
from tests.peers.vault_peer import VaultPeer, run_vault_peer

SECRET = "ghp_referencedSecretThatMustStaySecret"


@pytest.fixture
def allow(settings, tmp_path: Path) -> Iterator[Path]:
    """References allowed under test prefixes only; answers never cached (each read is a
    real one); the tmp folder is where file: references may point."""
    settings.MCPCONTROL_SECRET_REFS = [
        "env:MCP_SECRET_*", f"file:{tmp_path}/*", "aws-sm:mcp/*", "vault:secret/mcp/*",
    ]  # fmt: skip
    settings.MCPCONTROL_SECRET_REFS_CACHE_SECONDS = 0
    settings.MCPCONTROL_SECRET_REFS_TIMEOUT = 2
    yield tmp_path
    secret_refs.forget_cached()


@pytest.fixture
def vault(settings, allow) -> Iterator[VaultPeer]:
    with run_vault_peer() as peer:
        settings.MCPCONTROL_VAULT_ADDR, settings.MCPCONTROL_VAULT_TOKEN = peer.url, peer.token
        yield peer


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """AWS Secrets Manager as moto's server mode on 127.0.0.1 (an ephemeral port)."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws(settings, allow, moto_url, monkeypatch) -> object:
    """A Secrets Manager client on the moto server; mcpcontrol is pointed at it too."""
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(name, value)
    settings.MCPCONTROL_AWS_REGION, settings.MCPCONTROL_AWS_ENDPOINT_URL = "eu-west-1", moto_url
    return boto3.client("secretsmanager", region_name="eu-west-1", endpoint_url=moto_url)


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def create(user, **document) -> McpServer:
    body = {"url": "https://refs.example.com/mcp", **document}
    response = client_for(user).post("/api/v1/servers", body, format="json")
    assert response.status_code == 201, response.json()
    return McpServer.objects.get(pk=response.json()["id"])


def refused(user, **document) -> dict:
    body = {"url": "https://refs.example.com/mcp", **document}
    response = client_for(user).post("/api/v1/servers", body, format="json")
    assert response.status_code == 400, response.json()
    assert not McpServer.objects.filter(name=document["server_name"]).exists()
    return response.json()


def config(user, agent) -> dict:
    return client_for(user).get(f"/api/v1/agents/{agent.pk}/mcp-config").json()


def stored_headers(server: McpServer) -> dict:
    return McpServer.objects.get(pk=server.pk).headers


pytestmark = pytest.mark.django_db


# --- env: and file: --------------------------------------------------------------------


def test_an_env_reference_reaches_the_agent_dereferenced_and_is_stored_as_the_reference(
    allow, monkeypatch
):
    monkeypatch.setenv("MCP_SECRET_GITHUB", SECRET)
    user = UserFactory()
    agent = AgentFactory(owner=user)
    server = create(user, server_name="GitHub", headers={"X-Api-Key": "env:MCP_SECRET_GITHUB"})

    entry = config(user, agent)["mcpServers"][server.server_key]

    assert entry["headers"] == {"X-Api-Key": SECRET}
    assert stored_headers(server) == {"X-Api-Key": "env:MCP_SECRET_GITHUB"}
    assert SECRET not in str(list(AuditEvent.objects.values_list("changes", flat=True)))


def test_a_missing_env_variable_makes_only_its_server_missing_with_the_reason(allow, monkeypatch):
    monkeypatch.setenv("MCP_SECRET_GITHUB", SECRET)
    user = UserFactory()
    agent = AgentFactory(owner=user)
    broken = create(user, server_name="GitHub", headers={"X-Api-Key": "env:MCP_SECRET_GITHUB"})
    fine = create(user, server_name="Plain", headers={"X-Api-Key": "plain-value"})
    monkeypatch.delenv("MCP_SECRET_GITHUB")

    body = config(user, agent)

    [missing] = body["missing_credentials"]
    assert missing["server_name"] == "GitHub"
    assert missing["reason"] == (
        "header X-Api-Key of GitHub: env reference: the variable is not set"
    )
    assert body["mcpServers"][fine.server_key]["headers"] == {"X-Api-Key": "plain-value"}
    assert broken.server_key not in body["mcpServers"]


def test_a_bearer_token_may_be_a_file_reference(allow):
    token_file = allow / "bearer-token"
    token_file.write_text(SECRET + "\n")
    user = UserFactory()
    agent = AgentFactory(owner=user)
    server = create(user, server_name="Files", auth_type="bearer", auth_token=f"file:{token_file}")

    entry = config(user, agent)["mcpServers"][server.server_key]

    assert entry["headers"] == {"Authorization": f"Bearer {SECRET}"}
    assert shared_grant(server).secret.reveal() == f"file:{token_file}"
    token_file.unlink()
    [missing] = config(user, agent)["missing_credentials"]
    assert missing["reason"] == (
        "the credential of Files: file reference: cannot read the file (No such file or directory)"
    )


def test_a_variable_value_may_be_a_reference_and_is_substituted_after_dereferencing(
    allow, monkeypatch
):
    monkeypatch.setenv("MCP_SECRET_TOKEN", SECRET)
    user = UserFactory()
    agent = AgentFactory(owner=user)
    server = McpServerFactory(
        headers={"X-Token": "token ${TOKEN}"}, custom_user_vars={"TOKEN": {"title": "Token"}}
    )

    response = client_for(user).put(
        f"/api/v1/servers/{server.pk}/variables", {"TOKEN": "env:MCP_SECRET_TOKEN"}, format="json"
    )

    assert response.status_code == 200, response.json()
    assert VariableValue.objects.get().value.reveal() == "env:MCP_SECRET_TOKEN"
    entry = config(user, agent)["mcpServers"][server.server_key]
    assert entry["headers"] == {"X-Token": f"token {SECRET}"}


def test_a_stdio_servers_env_value_may_be_a_reference(allow, monkeypatch, admin):
    monkeypatch.setenv("MCP_SECRET_GITHUB", SECRET)
    agent = AgentFactory(owner=admin)
    server = server_services.server_register(
        actor=admin, name="Local", transport_type="stdio", command="github-mcp", url="",
        env={"GITHUB_TOKEN": "env:MCP_SECRET_GITHUB", "REGION": "eu"},
    )  # fmt: skip

    entry = config(admin, agent)["mcpServers"][server.server_key]

    assert entry["env"] == {"GITHUB_TOKEN": SECRET, "REGION": "eu"}


def test_the_health_check_dereferences_and_reports_a_missing_reference(
    allow, monkeypatch, make_server, apikey_http_url
):
    monkeypatch.setenv("MCP_SECRET_KEY", "k3y")
    server = make_server(
        url=apikey_http_url, auth_type="api_key", header_name="X-Api-Key", prefix="Key ",
        auth_secret="env:MCP_SECRET_KEY",
    )  # fmt: skip

    healthy = server_services.server_check(server_id=server.pk)
    monkeypatch.delenv("MCP_SECRET_KEY")
    missing = server_services.server_check(server_id=server.pk)

    assert healthy.outcome == "healthy"
    assert missing.outcome == "auth_required"
    assert "env reference: the variable is not set" in missing.message


def test_an_oauth_token_is_never_read_as_a_reference(allow, monkeypatch):
    """An authorization server chooses access tokens: one that looks like a reference must
    not make us read our own environment."""
    monkeypatch.setenv("MCP_SECRET_GITHUB", SECRET)
    user = UserFactory()
    agent = AgentFactory(owner=user)
    server = McpServerFactory(auth_type="oauth")
    Grant.objects.create(server=server, kind="oauth", secret="env:MCP_SECRET_GITHUB")

    entry = config(user, agent)["mcpServers"][server.server_key]

    assert entry["headers"] == {"Authorization": "Bearer env:MCP_SECRET_GITHUB"}


# --- What is refused at save, and the escape ---------------------------------------------


def test_it_refuses_an_unknown_scheme_at_save(allow):
    body = refused(UserFactory(), server_name="Typo", headers={"X-Api-Key": "gcp-sm:projects/x"})

    assert "unknown secret reference scheme 'gcp-sm'" in body["fields"]["headers"][0]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("env:MCP_SECRET_NOT_SET", "env reference: the variable is not set"),
        ("env:HOME", "env reference: not allowed here (MCPCONTROL_SECRET_REFS does not list it)"),
        ("env:MCP-SECRET", "env reference: write env:NAME"),
        ("file:relative/path", "file reference: write file:/absolute/path"),
        ("vault:secret/mcp/x", "vault reference: write vault:<mount>/<path>#<key>"),
    ],
)
def test_it_refuses_a_reference_that_does_not_resolve_at_save(allow, value, problem):
    body = refused(UserFactory(), server_name="Broken", headers={"X-Api-Key": value})

    assert body["fields"]["headers"][0].startswith(f"X-Api-Key: {problem}")


def test_it_refuses_a_file_reference_that_climbs_out_of_the_allowed_folder(allow):
    value = f"file:{allow}/../../etc/passwd"

    body = refused(UserFactory(), server_name="Climb", headers={"X-Api-Key": value})

    assert "without . or .. segments" in body["fields"]["headers"][0]


def test_it_refuses_a_static_credential_or_a_variable_that_does_not_resolve(allow):
    user = UserFactory()
    body = refused(user, server_name="Bearer", auth_type="bearer", auth_token="env:MCP_SECRET_NO")
    assert "env reference: the variable is not set" in str(body)
    server = McpServerFactory(custom_user_vars={"TOKEN": {"title": "Token"}})

    response = client_for(user).put(
        f"/api/v1/servers/{server.pk}/variables", {"TOKEN": "env:MCP_SECRET_NO"}, format="json"
    )

    assert response.status_code == 400
    assert not VariableValue.objects.exists()


def test_references_are_off_until_the_operator_lists_them(settings, monkeypatch):
    settings.MCPCONTROL_SECRET_REFS = []
    monkeypatch.setenv("MCP_SECRET_GITHUB", SECRET)

    body = refused(UserFactory(), server_name="Off", headers={"X-Api-Key": "env:MCP_SECRET_GITHUB"})

    assert "not allowed here" in body["fields"]["headers"][0]


def test_literal_stores_a_value_that_only_looks_like_a_reference(allow):
    user = UserFactory()
    agent = AgentFactory(owner=user)
    server = create(
        user, server_name="Literal",
        headers={"X-Api-Key": "literal:env:MCP_SECRET_NOT_SET", "X-Db": "file:///data/app.db"},
    )  # fmt: skip

    entry = config(user, agent)["mcpServers"][server.server_key]

    assert entry["headers"] == {
        "X-Api-Key": "env:MCP_SECRET_NOT_SET",
        "X-Db": "file:///data/app.db",
    }


# --- aws-sm: (moto's server mode) ------------------------------------------------------


def test_an_aws_secrets_manager_reference_reaches_the_agent(aws):
    aws.create_secret(Name="mcp/github", SecretString=json.dumps({"token": SECRET}))
    aws.create_secret(Name="mcp/plain", SecretString="plain-" + SECRET)
    user = UserFactory()
    agent = AgentFactory(owner=user)
    server = create(
        user, server_name="AWS",
        headers={"X-Api-Key": "aws-sm:mcp/github#token", "X-Plain": "aws-sm:mcp/plain"},
    )  # fmt: skip

    entry = config(user, agent)["mcpServers"][server.server_key]

    assert entry["headers"] == {"X-Api-Key": SECRET, "X-Plain": "plain-" + SECRET}
    assert stored_headers(server)["X-Api-Key"] == "aws-sm:mcp/github#token"


def test_it_refuses_an_aws_secret_that_does_not_exist_at_save(aws):
    body = refused(UserFactory(), server_name="AWS", headers={"X-Api-Key": "aws-sm:mcp/nope"})

    assert "aws-sm reference: no such secret (ResourceNotFoundException)" in str(body)


def test_an_unreachable_secrets_manager_makes_only_its_server_missing(aws, settings):
    aws.create_secret(Name="mcp/gitlab", SecretString=json.dumps({"token": SECRET}))
    user = UserFactory()
    agent = AgentFactory(owner=user)
    create(user, server_name="AWS", headers={"X-Api-Key": "aws-sm:mcp/gitlab#token"})
    fine = create(user, server_name="Plain", headers={"X-Api-Key": "plain-value"})
    settings.MCPCONTROL_AWS_ENDPOINT_URL = closed_port_url()

    body = config(user, agent)

    [missing] = body["missing_credentials"]
    assert missing["reason"] == (
        "header X-Api-Key of AWS: aws-sm reference: AWS is unreachable (EndpointConnectionError)"
    )
    assert fine.server_key in body["mcpServers"]


# --- vault: (a KV version 2 peer) --------------------------------------------------------


def test_a_vault_reference_reaches_the_agent_with_the_configured_token(vault):
    vault.secrets["secret/mcp/github"] = {"token": SECRET}
    user = UserFactory()
    agent = AgentFactory(owner=user)
    server = create(
        user, server_name="Vault", headers={"X-Api-Key": "vault:secret/mcp/github#token"}
    )

    entry = config(user, agent)["mcpServers"][server.server_key]

    assert entry["headers"] == {"X-Api-Key": SECRET}
    assert stored_headers(server) == {"X-Api-Key": "vault:secret/mcp/github#token"}
    assert vault.requests[-1] == "/v1/secret/data/mcp/github"


@pytest.mark.parametrize(
    ("token", "path", "problem"),
    [
        ("wrong-token", "secret/mcp/github#token", "permission denied"),
        (None, "secret/mcp/other#token", "no such secret"),
        (None, "secret/mcp/github#nokey", "the secret has no such key"),
    ],
)
def test_it_refuses_a_vault_reference_that_does_not_resolve_at_save(
    vault, settings, token, path, problem
):
    vault.secrets["secret/mcp/github"] = {"token": SECRET}
    settings.MCPCONTROL_VAULT_TOKEN = token or vault.token

    body = refused(UserFactory(), server_name="Vault", headers={"X-Api-Key": f"vault:{path}"})

    assert f"vault reference: {problem}" in body["fields"]["headers"][0]


def test_an_unreachable_vault_makes_only_its_server_missing_and_edits_still_work(vault, settings):
    vault.secrets["secret/mcp/github"] = {"token": SECRET}
    user = UserFactory()
    agent = AgentFactory(owner=user)
    server = create(
        user, server_name="Vault", headers={"X-Api-Key": "vault:secret/mcp/github#token"}
    )
    fine = create(user, server_name="Plain", headers={"X-Api-Key": "plain-value"})
    settings.MCPCONTROL_VAULT_ADDR = closed_port_url()

    body = config(user, agent)
    edit = client_for(user).patch(
        f"/api/v1/servers/{server.pk}", {"description": "still editable", "version": 1},
        format="json",
    )  # fmt: skip

    [missing] = body["missing_credentials"]
    assert missing["reason"].startswith(
        "header X-Api-Key of Vault: vault reference: Vault is unreachable"
    )
    assert fine.server_key in body["mcpServers"]
    assert edit.status_code == 200, edit.json()


def test_the_oauth_client_secret_may_live_in_vault(vault, oauth_server, peers):
    client_id, client_secret = peers.provider.add_client(grant_types=["client_credentials"])
    vault.secrets["secret/mcp/oauth"] = {"client_secret": client_secret}
    server = oauth_server
    server.oauth = {"client_id": client_id, "grant_type": "client_credentials",
                    "token_endpoint_auth_method": "client_secret_basic"}  # fmt: skip
    server.oauth_client_secret = "vault:secret/mcp/oauth#client_secret"
    server.save()

    services.oauth_client_credentials_fetch(server=server)

    assert list_tool_names(server.url, credential_headers(server=server)) == ["echo"]
    stored = McpServer.objects.get(pk=server.pk).oauth_client_secret.reveal()
    assert stored == "vault:secret/mcp/oauth#client_secret"


def test_a_refresh_backs_off_while_the_client_secret_cannot_be_had(vault, oauth_server, peers):
    client_id, client_secret = peers.provider.add_client(grant_types=["client_credentials"])
    vault.secrets["secret/mcp/oauth"] = {"client_secret": client_secret}
    server = oauth_server
    server.oauth = {"client_id": client_id, "grant_type": "client_credentials",
                    "token_endpoint_auth_method": "client_secret_basic"}  # fmt: skip
    server.oauth_client_secret = "vault:secret/mcp/oauth#client_secret"
    server.save()
    grant = services.oauth_client_credentials_fetch(server=server)
    Grant.objects.filter(pk=grant.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    del vault.secrets["secret/mcp/oauth"]

    outcome = services.grants_refresh(grant_ids=[grant.pk], budget=15)

    grant.refresh_from_db()
    assert outcome == {grant.pk: "failed"}
    assert not grant.needs_reauth  # the grant is fine: only the client secret is missing
    assert grant.refresh_not_before is not None
