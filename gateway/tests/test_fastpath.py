"""The fast path (gateway/api/fastpath.py) answers byte for byte as the SDK's path does.

Each request is sent twice to the gateway served for real, once with the fast path on and
once off (the SDK's StreamableHTTPSessionManager answering), and the two answers compared:
status, content type and body.
"""

import json
from typing import Any

import httpx2
import pytest
from mcp_types import CLIENT_CAPABILITIES_META_KEY, PROTOCOL_VERSION_META_KEY

from gateway.api import fastpath
from gateway.tests.test_gateway_mcp import echo_server, key_for
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db(transaction=True)

MODERN = "2026-07-28"


def _call(name: Any, arguments: Any = None, *, rid: Any = 7, **extra: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "name": name,
        "_meta": {PROTOCOL_VERSION_META_KEY: MODERN, CLIENT_CAPABILITIES_META_KEY: {}},
        **extra,
    }
    if arguments is not None:
        params["arguments"] = arguments
    return {"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": params}


def _headers(key: str, name: str | None, version: str | None = MODERN) -> dict[str, str]:
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json",
               "accept": "application/json, text/event-stream", "mcp-method": "tools/call"}  # fmt: skip
    if version is not None:
        headers["mcp-protocol-version"] = version
    if name is not None:
        headers["mcp-name"] = name
    return headers


def _both(url: str, body: Any, headers: dict[str, str]) -> list[tuple[int, str, bytes]]:
    answers = []
    for enabled in (True, False):
        fastpath.ENABLED = enabled
        try:
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            response = httpx2.post(url, content=raw, headers=headers, timeout=30)
        finally:
            fastpath.ENABLED = True
        answers.append(
            (response.status_code, response.headers.get("content-type", ""), response.content)
        )
    return answers


def test_fast_and_sdk_answers_are_identical(gateway_url, echo_peer):
    echo_server(echo_peer)
    agent = AgentFactory()
    key = key_for(agent)
    url = f"{gateway_url}/mcp/agents/{agent.pk}"
    add = "mcp__echo__add"
    cases = [
        ("a call", _call(add, {"a": 2, "b": 3}), _headers(key, add)),
        ("a string id", _call(add, {"a": 1, "b": 1}, rid="x-1"), _headers(key, add)),
        ("an unknown tool", _call("nope", {}), _headers(key, "nope")),
        ("no Mcp-Name header", _call(add, {"a": 1}), _headers(key, None)),
        ("a name mismatch", _call(add, {"a": 1}), _headers(key, "other")),
        ("no name", {**_call(add), "params": {"_meta": _call(add)["params"]["_meta"]}},
         _headers(key, add)),
        ("arguments not an object", _call(add, [1, 2]), _headers(key, add)),
        ("a progress token", _call(add, {"a": 1, "b": 2}), _headers(key, add)),
        ("a notification", {"jsonrpc": "2.0", "method": "notifications/initialized"},
         _headers(key, None)),
        ("not JSON", b"{nope", _headers(key, add)),
        ("a batch", [_call(add, {"a": 1})], _headers(key, add)),
        ("a handshake-era version", _call(add, {"a": 1}), _headers(key, add, "2025-11-25")),
    ]  # fmt: skip
    cases[7][1]["params"]["_meta"]["progressToken"] = "p1"
    for label, body, headers in cases:
        fast, sdk = _both(url, body, headers)
        assert fast == sdk, label
    # The call itself went through: the upstream's sum.
    fast, _ = _both(url, _call(add, {"a": 2, "b": 3}), _headers(key, add))
    assert fast[0] == 200 and json.loads(fast[2])["result"]["content"][0]["text"] == "5"


def test_the_fast_path_answers_the_sdk_client(gateway_url, echo_peer, monkeypatch):
    """The SDK's own client gets its calls answered by the fast path (not the fallback)."""
    from gateway.tests.test_gateway_mcp import run, text

    echo_server(echo_peer)
    agent = AgentFactory()
    served: list[Any] = []
    original = fastpath.serve

    async def counting(gateway: Any, scope: Any, receive: Any, send: Any) -> Any:
        answer = await original(gateway, scope, receive, send)
        served.append(answer is None)
        return answer

    monkeypatch.setattr(fastpath, "serve", counting)

    async def work(client: Any) -> Any:
        return await client.call_tool("mcp__echo__add", {"a": 40, "b": 2})

    result = run(f"{gateway_url}/mcp/agents/{agent.pk}", key_for(agent), work)
    assert text(result) == "42" and not result.is_error
    # The call was answered by the fast path; server/discover (before it) and the client's
    # tools/list (after it, for the tool's output schema) by the SDK.
    assert served.count(True) == 1, served
