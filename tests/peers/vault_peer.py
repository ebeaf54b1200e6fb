"""A tiny HashiCorp Vault peer: the KV version 2 read that vault: references use.

It answers `GET /v1/<mount>/data/<path>` with `{"data": {"data": {...}, "metadata": {...}}}`
for the secrets it holds, 404 for others, 403 unless X-Vault-Token is its token, and 503
while sealed, as Vault does. Every request is recorded, so a test can see what reached it.
"""

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class VaultPeer:
    url: str
    token: str
    # "<mount>/<path>" -> the secret's key/value data
    secrets: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    sealed: bool = False  # True: answer 503 to everything, as a sealed Vault does


def _handler(peer: VaultPeer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            peer.requests.append(self.path)
            if peer.sealed:
                self._answer(503, {"errors": ["Vault is sealed"]})
                return
            if self.headers.get("X-Vault-Token") != peer.token:
                self._answer(403, {"errors": ["permission denied"]})
                return
            mount, sep, path = self.path.split("?")[0].removeprefix("/v1/").partition("/data/")
            data = peer.secrets.get(f"{mount}/{path}") if sep else None
            if data is None:
                self._answer(404, {"errors": []})
                return
            metadata = {"version": 1, "deletion_time": "", "destroyed": False}
            self._answer(200, {"data": {"data": data, "metadata": metadata}})

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet test output

    return Handler


@contextmanager
def run_vault_peer(token: str = "vault-test-token") -> Iterator[VaultPeer]:
    """A Vault peer on 127.0.0.1 (ephemeral port), stopped on exit."""
    peer = VaultPeer(url="", token=token)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(peer))
    peer.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield peer
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
