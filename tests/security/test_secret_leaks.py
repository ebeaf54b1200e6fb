"""The secret leak scan (issue 10, "Figures as tests"): distinctive secrets of every kind are
stored through the API, the management commands and the services, then searched for in
every place they must not appear in plain text: `dumpdata`, `export_servers`, the log records
of every request made, the GET answer of every URL of the URL conf as the superuser and as the
owner (but the endpoints that return a secret by design, ALLOWED below), every console page
and every audit row.

Run it with `pytest tests/security/test_secret_leaks.py -s` to see the figures.
"""

import json
import logging
import secrets
from collections import Counter
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from audit.models import AuditEvent
from credentials.models import Grant
from credentials.oauth.client import TokenResponse
from credentials.services.grants import grant_set_secret, grant_store_tokens
from servers.models import Agent, McpServer
from tests.api_fixtures import client_for
from tests.factories import AdminFactory, UserFactory
from tests.security.urlconf import Endpoint, endpoints
from tests.security.world import DEAD_URL

# About 450 requests and documents (50 s on a shared machine): `make test-security` runs it.
pytestmark = [pytest.mark.django_db, pytest.mark.faults]

# The GET endpoints whose answer carries a secret by design (docs/security.md, "Who may see
# which secret"), with the reason. Every other answer must carry none.
ALLOWED = {
    "api/v1/agents/<pk>/mcp-config": "an agent's client config carries the credentials its "
    "owner may use (audited secret_read, no-store)",
    "api/v1/tokens/<pk>": "a user reads back a token of their own vault (audited)",
}
PASSWORD = "pw-for-tests-only"  # tests/factories.py: stored only as a hash


class Capture(logging.Handler):
    """Every line the configured logging writes: each record that reaches the root logger's
    handlers, formatted by their formatter (LOGGING's "structured", which redacts)."""

    def __init__(self, formatter: logging.Formatter | None) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(formatter)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(self.format(record))


@pytest.fixture
def captured_logs() -> Iterator[Capture]:
    root = logging.getLogger()
    written = [h for h in root.handlers if isinstance(h, logging.StreamHandler)]
    assert written, "LOGGING's console handler is not on the root logger"
    handler, level = Capture(written[0].formatter), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


class Secrets:
    """Distinctive values, each named for where it went in."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def new(self, where: str) -> str:
        self.values[where] = f"LEAK{len(self.values):02d}x{secrets.token_hex(12)}"
        return self.values[where]

    def found_in(self, text: str) -> list[str]:
        return [where for where, value in self.values.items() if value in text]


def _created(api: APIClient, path: str, body: dict[str, Any], method: str = "post") -> Any:
    response = getattr(api, method)(path, body, format="json")
    assert response.status_code in (200, 201), (path, response.content)
    return response.json()


def _store_through_the_api(s: Secrets, owner: Any, admin: Any, tmp_path: Path) -> list[str]:
    """1. Servers, variables and vault tokens through the API; the answers of these writes
    are scanned as well (returned for the caller to search)."""
    me, boss = client_for(owner), client_for(admin)
    http = {"type": "streamable-http", "url": DEAD_URL}
    answers = []
    bearer = _created(me, "/api/v1/servers", {
        "server_name": "Leaky bearer", "transport": {**http, "headers": {
            "X-Secret": s.new("server header value")}},
        "auth_type": "bearer", "auth_token": s.new("bearer token (create)")})  # fmt: skip
    answers.append(json.dumps(bearer))
    patched = _created(
        me,
        f"/api/v1/servers/{bearer['id']}",
        {"auth_token": s.new("bearer token (patch)"), "version": bearer["version"]},
        "patch",
    )
    answers.append(json.dumps(patched))
    answers.append(json.dumps(_created(me, "/api/v1/servers", {
        "server_name": "Leaky key", "transport": http, "auth_type": "api_key",
        "auth_header_name": "X-Api-Key", "auth_token": s.new("API key")})))  # fmt: skip
    answers.append(json.dumps(_created(boss, "/api/v1/servers", {
        "server_name": "Leaky stdio", "transport": {"type": "stdio", "command": "/bin/true",
        "env": {"API_TOKEN": s.new("stdio env value")}}})))  # fmt: skip
    oauth = _created(boss, "/api/v1/admin/servers", {
        "server_name": "Leaky OAuth", "scope": "shared_app",
        "transport": {**http, "headers": {"X-Token": "token ${TOKEN}"}},
        "custom_user_vars": {"TOKEN": {"title": "Token"}},
        "oauth": {"authorization_url": "https://auth.example.com/authorize",
                  "token_url": "https://auth.example.com/token", "client_id": "leaky",
                  "client_secret": s.new("OAuth client secret")}})  # fmt: skip
    answers.append(json.dumps(oauth))
    # Direct mode: the one config that hands out secrets by design (gateway, the default for
    # new agents, hands out none); the scan checks they appear there and nowhere else.
    agent = _created(me, "/api/v1/agents", {"name": "leaky-agent", "config_mode": "direct"})
    answers.append(json.dumps(_created(me, f"/api/v1/servers/{oauth['id']}/variables",
                                       {"TOKEN": s.new("user variable")}, "put")))  # fmt: skip
    answers.append(json.dumps(_created(
        me, f"/api/v1/agents/{agent['id']}/variables/{oauth['id']}",
        {"TOKEN": s.new("per-agent variable")}, "put")))  # fmt: skip
    for kind in ("oauth_access", "oauth_refresh", "api_key"):
        answers.append(
            json.dumps(
                _created(
                    me,
                    "/api/v1/tokens",
                    {"type": kind, "identifier": f"vault-{kind}", "token": s.new(f"vault {kind}")},
                )
            )
        )
    return answers


def _store_elsewhere(s: Secrets, owner: Any, tmp_path: Path) -> None:
    """2. Grants through the services (an OAuth token pair, an agent's own credential) and a
    client config through the import command."""
    oauth = McpServer.objects.get(name="Leaky OAuth")
    grant_store_tokens(server=oauth, agent=None, granted_by=owner, actor=owner,
                       response=TokenResponse(access_token=s.new("OAuth access token"),
                                              refresh_token=s.new("OAuth refresh token"),
                                              expires_in=3600))  # fmt: skip
    grant_set_secret(server=McpServer.objects.get(name="Leaky key"),
                     agent=Agent.objects.get(name="leaky-agent"),
                     secret=s.new("per-agent API key"), actor=owner)  # fmt: skip
    config = tmp_path / "client.json"
    config.write_text(json.dumps({"mcpServers": {
        "imported-stdio": {"command": "/bin/true", "env": {"KEY": s.new("imported env")}},
        "imported-http": {"type": "streamable-http", "url": DEAD_URL,
                          "headers": {"Authorization": f"Bearer {s.new('imported header')}"}},
    }}))  # fmt: skip
    call_command("import_mcp_config", str(config), stdout=StringIO())


def _sign_in_and_connect(s: Secrets, owner: Any) -> None:
    """3. Bearer tokens the API hands out (a login, a generated pair), the owner's own
    Authorization header, and an OAuth callback's code and state (never in the access log)."""
    login = APIClient().post(
        "/api/v1/auth/token", {"username": owner.username, "password": PASSWORD}, format="json"
    )
    assert login.status_code == 200, login.content
    s.values["JWT refresh token (login)"] = login.json()["refresh"]
    api = client_for(owner)
    s.values["JWT access token (Authorization header)"] = api._credentials[  # type: ignore[attr-defined]
        "HTTP_AUTHORIZATION"].removeprefix("Bearer ")  # fmt: skip
    pair = api.post(
        "/api/v1/tokens/generate",
        {"requested_scopes": ["read:servers"], "expires_in_hours": 1},
        format="json",
    )
    s.values["generated refresh token"] = pair.json()["tokens"]["refresh_token"]
    browser = APIClient()
    browser.force_login(owner)
    browser.get(f"/oauth/callback?code={s.new('OAuth code')}&state={s.new('OAuth state')}")


def _fill(endpoint: Endpoint) -> Iterator[str]:
    """The endpoint's path for every row of the kind its parameters name."""
    kinds = {"api/v1/servers/": McpServer, "api/v1/agents/": Agent}
    if not endpoint.params:
        yield endpoint.path({})
        return
    if endpoint.template.startswith("api/v1/tokens/"):
        from tokens.models import Token

        ids = [str(t.pk) for t in Token.objects.all()]
        yield from (
            endpoint.path({"pk": i}) for i in ids + [f"grant-{g.pk}" for g in Grant.objects.all()]
        )
        return
    model = next((m for prefix, m in kinds.items() if endpoint.template.startswith(prefix)), None)
    if model is None:
        return
    servers = [str(pk) for pk in McpServer.objects.values_list("pk", flat=True)]
    for row in model.objects.all():
        values = {p: str(row.pk) for p in endpoint.params[:1]}
        for server in servers if len(endpoint.params) > 1 else [""]:
            values.update({p: server for p in endpoint.params[1:]})
            yield endpoint.path(values)


def _console_pages() -> Iterator[str]:
    """Every changelist, change, history and delete page of every registered model's rows."""
    from django.contrib import admin

    for model in admin.site._registry:
        base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        yield base
        yield base + "add/"
        for pk in model._default_manager.values_list("pk", flat=True):
            yield from (f"{base}{pk}/change/", f"{base}{pk}/history/", f"{base}{pk}/delete/")


def _scan(s: Secrets, figures: Counter[str], sink: str, text: str, leaks: list[str]) -> None:
    figures[sink] += 1
    leaks.extend(f"{sink}: {where}" for where in s.found_in(text))


@pytest.mark.timeout(900)
def test_no_secret_is_found_in_plain_text_where_it_must_not_be(tmp_path, captured_logs, capsys):
    s, owner, admin = Secrets(), UserFactory(), AdminFactory()
    s.values["a user's password"] = PASSWORD
    figures, leaks, allowed_hits = Counter[str](), list[str](), Counter[str]()
    for answer in _store_through_the_api(s, owner, admin, tmp_path):
        _scan(s, figures, "API write answers", answer, leaks)
    _store_elsewhere(s, owner, tmp_path)
    _sign_in_and_connect(s, owner)

    dump = StringIO()
    call_command("dumpdata", stdout=dump)
    _scan(s, figures, "dumpdata", dump.getvalue(), leaks)
    call_command("export_servers", "--out", str(tmp_path / "export"), stdout=StringIO())
    for file in (tmp_path / "export").iterdir():
        _scan(s, figures, "export_servers files", file.read_text(), leaks)
    for user in (admin, owner):
        api = client_for(user)
        for endpoint in endpoints():
            if not endpoint.template.startswith("api/") or "get" not in endpoint.methods:
                continue
            for path in _fill(endpoint):
                text = api.get(path).content.decode()
                if endpoint.template in ALLOWED:
                    allowed_hits[endpoint.template] += len(s.found_in(text))
                    continue
                _scan(s, figures, "API GET answers", text, leaks)
    console = APIClient()
    console.force_login(admin)
    pages = Counter[int]()
    for page in _console_pages():
        response = console.get(page)
        pages[response.status_code] += 1
        _scan(s, figures, "console pages", response.content.decode(), leaks)
    for row in AuditEvent.objects.values():
        _scan(s, figures, "audit rows", repr(row), leaks)
    for record in captured_logs.texts:
        _scan(s, figures, "log records", record, leaks)

    with capsys.disabled():
        print(f"\nsecret leak scan: {len(s.values)} secrets; searched "
              + ", ".join(f"{n} {sink}" for sink, n in figures.items())
              + f"; {len(leaks)} unintended plaintext; by design: {dict(allowed_hits)}")  # fmt: skip
    assert not leaks, "\n".join(leaks)
    # The scan sees secrets at all, and the log lines it reads are the ones written.
    assert allowed_hits["api/v1/agents/<pk>/mcp-config"] > 0
    assert any("/oauth/callback?[redacted]" in line for line in captured_logs.texts)
    assert pages[200] > 100, pages  # the console pages were rendered, not a login redirect
