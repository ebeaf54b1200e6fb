"""The hostile-input corpus (issue 10, "Figures as tests"): the bodies of hostile_inputs.json
sent to every writable endpoint of the URL conf, hostile URLs and header fields, and a wrong
type for every field of seed 004's server document. Each must be a 4xx with the API's
`{"error", "message"}` envelope, never a 5xx, and leave every row as it was.

Run it with `pytest tests/security/test_hostile_corpus.py -s` to see the figures.
"""

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.db import transaction
from rest_framework.test import APIClient

from tests.api_fixtures import client_for
from tests.factories import AdminFactory
from tests.security.test_access_matrix import policy_for
from tests.security.urlconf import WRITE_METHODS, endpoints
from tests.security.world import World, build_world
from tests.test_document_round_trips import full_document

pytestmark = pytest.mark.django_db

CORPUS = json.loads((Path(__file__).parent / "hostile_inputs.json").read_text())
APPS = ("servers", "credentials", "tokens", "audit", "auth")
# Endpoints that read no body: any body is ignored, so a 2xx is right (rows still unchanged).
BODY_IGNORED = {
    "api/v1/servers/<pk>/refresh": "queues a health check; the request has no parameters",
}


def body_bytes(entry: dict[str, Any]) -> bytes:
    if "raw_hex" in entry:
        return bytes.fromhex(entry["raw_hex"])
    if "parts" in entry:
        return "".join(text * times for text, times in entry["parts"]).encode()
    return str(entry["raw"]).encode()


def snapshot() -> list[Any]:
    """Every row of the project's models (and users and groups), as values."""
    return [list(model._default_manager.order_by("pk").values())
            for model in apps.get_models() if model._meta.app_label in APPS]  # fmt: skip


class Figures:
    def __init__(self) -> None:
        self.counts, self.wrong = Counter[str](), list[str]()

    def check(self, label: str, send: Any, *args: Any, body_ignored: bool = False,
              **kwargs: Any) -> None:  # fmt: skip
        """Send one request in a savepoint: a 4xx with the envelope (or, for an endpoint that
        takes no body, any answer but a 5xx), and no row changed."""
        with transaction.atomic():
            before = snapshot()
            response = send(*args, **kwargs)
            changed = snapshot() != before
            transaction.set_rollback(True)
        code = response.status_code
        self.counts[f"{code // 100}xx"] += 1
        body = _json(response)
        envelope = isinstance(body, dict) and {"error", "message"} <= body.keys()
        refused = 400 <= code < 500 and envelope
        if changed or code >= 500 or not (refused or body_ignored):
            self.wrong.append(f"{label} -> {code} {response.content[:200]!r}"
                              f"{' (rows changed)' if changed else ''}")  # fmt: skip
        self.counts["partial writes"] += changed

    def report(self, capsys: Any, what: str) -> None:
        with capsys.disabled():
            print(f"\nhostile corpus, {what}: {sum(self.counts[k] for k in ('2xx', '3xx', '4xx', '5xx'))}"
                  f" requests, {self.counts['4xx']} x 4xx, {self.counts['5xx']} x 5xx, "
                  f"{self.counts['2xx']} x 2xx, {self.counts['partial writes']} partial writes")  # fmt: skip
        assert not self.wrong, "\n".join(self.wrong)


def _json(response: Any) -> Any:
    try:
        return json.loads(response.content)
    except ValueError:
        return None


def _writable(world: World) -> list[tuple[str, str, str]]:
    """(template, method, path) of every write of every API endpoint, on the owner's objects."""
    cases = []
    for endpoint in endpoints():
        policy = policy_for(endpoint.template)
        if not endpoint.template.startswith("api/") or policy is None:
            continue
        kinds = dict(policy.params)
        values = {p: world.objects[kinds[p]]["mine"] for p in endpoint.params if p in kinds}
        for method in endpoint.methods:
            if (
                method in WRITE_METHODS
                and method != "delete"
                and len(values) == len(endpoint.params)
            ):
                cases.append((endpoint.template, method, endpoint.path(values)))
    return cases


# About 420 requests, each with two snapshots of every row: `make test-security` runs it.
@pytest.mark.faults
@pytest.mark.timeout(1200)
def test_every_hostile_body_on_every_writable_endpoint(settings, capsys):
    settings.MCPCONTROL_REFRESH_WAIT_SECONDS = 0
    world, figures = build_world(), Figures()
    api = world.api("admin")
    for template, method, path in _writable(world):
        for entry in CORPUS["bodies"]:
            figures.check(f"{entry['name']}: {method.upper()} {path}", getattr(api, method),
                          path, body_bytes(entry), content_type="application/json",
                          body_ignored=template in BODY_IGNORED)  # fmt: skip
    figures.report(capsys, f"{len(CORPUS['bodies'])} bodies x every writable endpoint")


def _server_body(**extra: Any) -> dict[str, Any]:
    return {"server_name": "Hostile", "transport": {"type": "streamable-http",
            "url": "https://mcp.example.com/mcp"}, **extra}  # fmt: skip


@pytest.mark.faults  # 130-210 requests with row snapshots: over a minute when busy
def test_hostile_urls_and_header_fields(settings, capsys):
    settings.MCPCONTROL_ALLOW_PRIVATE_UPSTREAMS = False
    api, figures = client_for(AdminFactory()), Figures()
    oauth = {"authorization_url": "https://auth.example.com/a", "client_id": "c",
             "token_url": "https://auth.example.com/t"}  # fmt: skip
    for url in CORPUS["urls"]:
        bodies = [_server_body(transport={"type": "streamable-http", "url": url})]
        if url.strip():  # a blank OAuth endpoint means "not set": discovery fills it in
            bodies += [_server_body(auth_type="oauth", oauth={**oauth, "token_url": url}),
                       _server_body(auth_type="oauth", oauth={**oauth, "authorization_url": url})]  # fmt: skip
        for body in bodies:
            figures.check(f"URL {url!r}", api.post, "/api/v1/servers", body, format="json")
    for name, fields in CORPUS["header_fields"].items():
        figures.check(name, api.post, "/api/v1/servers", _server_body(**fields), format="json")
    figures.report(capsys, f"{len(CORPUS['urls'])} URLs in 3 fields, "
                   f"{len(CORPUS['header_fields'])} header fields")  # fmt: skip


WRONG = {
    str: [["x"], {"a": 1}, True],
    int: ["ten", [1], {"a": 1}, True, 1.5],
    bool: ["maybe", [True], {"a": 1}, 7],
    dict: [["a"], "a", 1, True],
    list: [{"a": 1}, "a", 1, True],
    type(None): [[1], {"a": 1}],
}


def _wrong_typed(document: dict[str, Any], prefix: str = "") -> list[tuple[str, dict]]:
    """The document with one field (nested ones of `transport` too) of a wrong JSON type."""
    out = []
    for field, value in document.items():
        for wrong in WRONG[type(value)]:
            out.append((f"{prefix}{field}={wrong!r}", {**document, field: wrong}))
        if field == "transport":
            out += [(name, {**document, "transport": sub})
                    for name, sub in _wrong_typed(value, "transport.")]  # fmt: skip
    return out


@pytest.mark.faults  # 130-210 requests with row snapshots: over a minute when busy
def test_a_wrong_type_for_every_field_of_the_server_document(capsys):
    api, figures = client_for(AdminFactory()), Figures()
    for transport, auth in (("streamable-http", "api_key"), ("stdio", "oauth")):
        for label, body in _wrong_typed(full_document(transport, auth)):
            figures.check(label, api.post, "/api/v1/servers", body, format="json")
    figures.report(capsys, "a wrong type in every field of seed 004's document")


def test_the_corpus_is_refused_by_the_anonymous_token_endpoint_too(capsys):
    figures = Figures()
    for entry in CORPUS["bodies"]:
        figures.check(entry["name"], APIClient().post, "/api/v1/auth/token", body_bytes(entry),
                      content_type="application/json")  # fmt: skip
    figures.report(capsys, "bodies x the anonymous token endpoint")
