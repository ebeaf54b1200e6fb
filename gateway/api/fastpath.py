"""The gateway's fast path: a `tools/call` POST answered without the SDK's per-request machinery.

For every POST the SDK's StreamableHTTPSessionManager builds a Request, a Connection, a
ServerRunner, a ServerSession and its context, an OpenTelemetry span, and validates the
request and the result several times over. For the one request an agent sends over and
over, a single JSON-RPC `tools/call` at protocol 2026-07-28 (the SDK 2.x client's default)
asking for JSON, this module does only what decides the answer: the same envelope checks
(the SDK's own functions: routing headers, `_meta` envelope, `Mcp-Param-*` headers, the
version's request surface), `Gateway.call_tool` (the one implementation of a call, shared
with the SDK path), and the SDK's own result serialization and response writer, so the
bytes on the wire are the SDK's (gateway/tests/test_fastpath.py compares them).

Anything else goes to the SDK unchanged, its body replayed: other methods, notifications,
batches, handshake-era versions (no `MCP-Protocol-Version` header, or 2024-11-05 to
2025-11-25), SSE-only clients, a progress token, and every request the SDK would refuse (a
malformed envelope, mismatched headers): the SDK writes those errors itself.

What the fast path does not do: an OpenTelemetry span per call (the SDK's middleware), and
`ctx` is None in `Gateway.call_tool` (it does not use it). Pinned to mcp 2.3.0: it imports
two of the SDK's private helpers (`_write`, `ServerRunner._serialize`).
"""

import json
from collections.abc import Awaitable, Mapping
from typing import Any, TypeVar

import anyio
import mcp_types as types
from mcp.server._streamable_http_modern import _write
from mcp.server.runner import ServerRunner, modern_error_data
from mcp.server.streamable_http import check_accept_headers
from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE
from mcp.shared.inbound import (
    MCP_PARAM_HEADER_PREFIX,
    InboundModernRoute,
    classify_inbound_request,
    find_duplicated_routing_header,
    validate_mcp_param_headers,
)
from mcp.shared.jsonrpc_dispatcher import progress_token_from_params
from mcp_types import methods as _methods
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError
from starlette.requests import Request

ENABLED = True  # a test turns it off to compare with the SDK's answers
MAX_BODY = DEFAULT_MAX_REQUEST_BODY_SIZE  # larger bodies go to the SDK (its 413)
_PARAM_PREFIX = MCP_PARAM_HEADER_PREFIX.lower()
_METHOD = "tools/call"
T = TypeVar("T")


def _replaying(body: bytes, receive: Any) -> Any:
    """A receive that hands the already-read body to the SDK once, then the real channel."""
    sent = False

    async def replay() -> Any:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _declared_size(headers: Mapping[str, str]) -> int | None:
    """The Content-Length if it is a size the fast path reads, else None (the SDK decides:
    413 past its limit; a chunked body is read by it)."""
    declared = headers.get("content-length", "")
    if not declared.isdigit() or int(declared) > MAX_BODY:
        return None
    return int(declared)


async def _body(receive: Any) -> bytes | None:
    """The whole body (its length checked by the server against Content-Length), or None
    when the client went away before sending it."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _request_id(decoded: Any) -> Any:
    """The id of a plain JSON-RPC 2.0 request object, or None if it is not one."""
    if not isinstance(decoded, dict) or decoded.get("jsonrpc") != "2.0":
        return None
    rid = decoded.get("id")
    if isinstance(rid, bool) or not isinstance(rid, int | str):
        return None
    if decoded.get("method") != _METHOD or not isinstance(decoded.get("params"), dict):
        return None
    return rid


def _params_ok(gateway: Any, params: Mapping[str, Any], headers: Mapping[str, str]) -> bool:
    """The `Mcp-Param-*` headers agree with the tool's schema (the SDK's check, on the schema
    the agent was advertised); False sends the request to the SDK, which answers the 400."""
    arguments = params.get("arguments")
    if arguments is not None and not isinstance(arguments, Mapping):
        return False
    if not arguments and not any(h.startswith(_PARAM_PREFIX) for h in headers):
        return True
    schema = gateway.input_schema(params.get("name"))
    if schema is None:
        return True
    return validate_mcp_param_headers(schema, arguments or {}, headers) is None


async def _unless_disconnected[T](call: Awaitable[T], receive: Any) -> T | None:
    """Run the call; a client that closes its connection cancels it (and so the upstream
    request, as the SDK's streaming path does), and None is returned."""
    outcome: list[T] = []
    async with anyio.create_task_group() as tg:

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            tg.cancel_scope.cancel()

        tg.start_soon(watch)
        outcome.append(await call)
        tg.cancel_scope.cancel()
    return outcome[0] if outcome else None


async def serve(gateway: Any, scope: Any, receive: Any, send: Any) -> Any:
    """Answer the request if it is a plain modern `tools/call`; else return the receive the
    SDK must use (the body, if read, is replayed). None means answered."""
    if not ENABLED or scope.get("method") != "POST":
        return receive
    request = Request(scope)
    headers = request.headers
    if headers.get("mcp-protocol-version") not in MODERN_PROTOCOL_VERSIONS:
        return receive
    if headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return receive
    accept_json, _ = check_accept_headers(request)
    if not accept_json or _declared_size(headers) is None:
        return receive
    body = await _body(receive)
    if body is None:
        return None  # the client went away: nobody to answer
    replay = _replaying(body, receive)
    try:
        decoded = json.loads(body)
    except (ValueError, RecursionError):
        return replay
    rid = _request_id(decoded)
    if rid is None or find_duplicated_routing_header(headers.items()) is not None:
        return replay
    verdict = classify_inbound_request(decoded, headers=dict(headers))
    params = decoded["params"]
    if not isinstance(verdict, InboundModernRoute) or progress_token_from_params(params):
        return replay
    if not _params_ok(gateway, params, headers):
        return replay
    version = verdict.protocol_version
    try:
        _methods.validate_client_request(_METHOD, version, params)
        typed = types.CallToolRequestParams.model_validate(params, by_name=False)
    except (KeyError, ValidationError):
        return replay  # the SDK's INVALID_PARAMS / METHOD_NOT_FOUND
    try:
        result = await _unless_disconnected(gateway.call_tool(None, typed), receive)
        if result is None:
            return None  # the client went away: the call (and the upstream's) is cancelled
        wire = ServerRunner(gateway.server, None, None)._serialize(_METHOD, version, result)  # type: ignore[arg-type]
        answer: types.JSONRPCResponse | types.JSONRPCError = types.JSONRPCResponse(
            jsonrpc="2.0", id=rid, result=wire
        )
    except Exception as exc:  # as the SDK's _to_jsonrpc_response: mapped, never a 500
        answer = types.JSONRPCError(jsonrpc="2.0", id=rid, error=modern_error_data(exc))
    await _write(answer, scope, receive, send)
    return None
