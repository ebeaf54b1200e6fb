"""The SDK's MCP server (as sdk_peer.py, streamable HTTP) behind any number of URLs, counting
the health checks each one gets: the cluster test's upstream.

Usage: python counting_peer.py   (binds 127.0.0.1 on an ephemeral port, prints "PORT <n>")

/s/<key>/mcp is one MCP server per key (all with sdk_peer's three tools). Every health check
lists the tools from the first page exactly once, so each tools/list without a cursor is one
check of <key>. Control endpoints, for the test:
- GET /_checks: every check so far, in arrival order: [[key, unix time], ...]
- GET /_inflight: how many tools/list answers are being held back right now
- POST /_slow?seconds=S: hold back every tools/list answer S seconds (0: answer at once), so
  a test can find the checkers mid-check
"""

import json
import sys
import time
from typing import Any
from urllib.parse import parse_qs

import anyio
import uvicorn
from sdk_peer import bound_socket, build_server

Scope = dict[str, Any]


def _first_page_listings(body: bytes) -> int:
    try:
        payload = json.loads(body or b"null")
    except ValueError:
        return 0
    messages = payload if isinstance(payload, list) else [payload]
    return sum(
        1
        for m in messages
        if isinstance(m, dict)
        and m.get("method") == "tools/list"
        and not (m.get("params") or {}).get("cursor")
    )


class CountingApp:
    """ASGI: routes /s/<key>/mcp to the MCP app at /mcp, counting and holding tools/list."""

    def __init__(self, mcp_app: Any) -> None:
        self.mcp_app = mcp_app
        self.checks: list[list[Any]] = []
        self.inflight = 0
        self.slow = 0.0

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":  # lifespan: the MCP app's session manager starts here
            await self.mcp_app(scope, receive, send)
            return
        path = scope["path"]
        if path == "/_checks":
            await self._reply(send, self.checks)
        elif path == "/_inflight":
            await self._reply(send, self.inflight)
        elif path == "/_slow":
            query = parse_qs(scope.get("query_string", b"").decode())
            self.slow = float(query.get("seconds", ["0"])[0])
            await self._reply(send, self.slow)
        elif (
            (parts := path.strip("/").split("/")) and len(parts) == 3 and parts[::2] == ["s", "mcp"]
        ):
            await self._mcp(parts[1], scope, receive, send)
        else:
            await self._reply(send, "not found", status=404)

    async def _mcp(self, key: str, scope: Scope, receive: Any, send: Any) -> None:
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            more = message.get("more_body", False)
        for _ in range(_first_page_listings(body)):
            self.checks.append([key, time.time()])
        if self.slow and _first_page_listings(body):
            self.inflight += 1
            try:
                await anyio.sleep(self.slow)
            finally:
                self.inflight -= 1
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return dict(await receive())

        inner = {**scope, "path": "/mcp", "raw_path": b"/mcp"}
        await self.mcp_app(inner, replay, send)

    async def _reply(self, send: Any, value: Any, status: int = 200) -> None:
        body = json.dumps(value).encode()
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def main() -> None:
    server = build_server(None, page_size=100)
    app = CountingApp(server.streamable_http_app(stateless_http=True, json_response=True))
    sock = bound_socket()
    config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    sys.exit(main())
