"""Issue 10's hostile server documents: each is a 400 naming the field, and nothing is
written (no server, no credential, no audit row)."""

import pytest

from audit.models import AuditEvent
from credentials.models import Grant
from servers.models import McpServer

pytestmark = pytest.mark.django_db

URL = "https://mcp.example.com/mcp"


def _body(**extra):
    return {"server_name": "Hostile", "transport": {"type": "streamable-http", "url": URL},
            **extra}  # fmt: skip


HOSTILE = {
    # Header injection (finding 9): CR/LF/NUL in values and names, non-token names, framing.
    "prefix with CRLF": (_body(auth_type="api_key", auth_header_name="X-Key",
                               auth_prefix="Key\r\nX-Evil: 1 "), "auth_prefix"),
    "token with LF": (_body(auth_type="bearer", auth_token="tok\nX-Evil: 1"), "auth_token"),
    "header value CRLF": (_body(headers={"X-A": "a\r\nHost: evil"}), "headers"),
    "header name with space": (_body(headers={"X A": "a"}), "headers"),
    "empty header name": (_body(headers={"": "a"}), "headers"),
    "Host override": (_body(headers={"Host": "evil.example"}), "headers"),
    "Content-Length override": (_body(headers={"Content-Length": "0"}), "headers"),
    "Transfer-Encoding override": (_body(headers={"Transfer-Encoding": "chunked"}), "headers"),
    "Connection override": (_body(headers={"Connection": "close"}), "headers"),
    "api key header name Host": (_body(auth_type="api_key", auth_header_name="Host"),
                                 "auth_header_name"),
    # The URL guard at save time (finding 13).
    "file URL": (_body(transport={"type": "streamable-http", "url": "file:///etc/passwd"}),
                 "transport.url"),
    "gopher URL": (_body(transport={"type": "sse", "url": "gopher://x/"}), "transport.url"),
    "metadata address": (_body(transport={"type": "sse", "url": "http://169.254.169.254/"}),
                         "transport.url"),
    "6to4 metadata": (_body(transport={"type": "sse", "url": "http://[2002:a9fe:a9fe::]/"}),
                      "transport.url"),
    "decimal metadata": (_body(transport={"type": "sse", "url": "http://2852039166/"}),
                         "transport.url"),
    "URL with CRLF": (_body(transport={"type": "sse", "url": "http://x.example/\r\nHost: y"}),
                      "transport.url"),
    "unclosed IPv6": (_body(transport={"type": "sse", "url": "http://[::1/mcp"}),
                      "transport.url"),
    "OAuth token URL file": (_body(auth_type="oauth", oauth={"token_url": "file:///x"}), "oauth"),
    "OAuth authorize javascript": (
        _body(auth_type="oauth", oauth={"authorization_url": "javascript:alert(1)"}), "oauth"),
    # Timeouts a sweep must survive (finding 1).
    "timeout overflow": (_body(timeout=1_200_000_000), "timeout"),
    "init timeout overflow": (_body(init_timeout=1_000_000_000), "init_timeout"),
    "timeout_ms overflow": (_body(timeout_ms=300_001), "timeout_ms"),
}  # fmt: skip


@pytest.mark.parametrize(("body", "field"), HOSTILE.values(), ids=HOSTILE.keys())
def test_it_refuses_a_hostile_document_naming_the_field(admin_api, settings, body, field):
    settings.MCPCONTROL_ALLOW_PRIVATE_UPSTREAMS = False

    response = admin_api.post("/api/v1/servers", body, format="json")

    assert response.status_code == 400, response.json()
    assert field in response.json()["fields"], response.json()
    assert not McpServer.objects.exists()
    assert not Grant.objects.exists()
    assert not AuditEvent.objects.exists()


def test_a_timeout_within_the_bound_is_accepted(admin_api):
    response = admin_api.post("/api/v1/servers", _body(timeout=300_000), format="json")

    assert response.status_code == 201
