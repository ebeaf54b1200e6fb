"""A Celery worker's small HTTP side: /healthz, /readyz and /metrics for its own pod.

A worker serves no web requests, yet an orchestrator must probe it and Prometheus must read
the counters its pool children write (health checks and token refreshes run there). Started
in the worker's main process when MCPCONTROL_WORKER_HTTP_PORT is set; the pool children are
forked without the thread.
"""

import json
import logging
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from mcpcontrol import health, metrics

logger = logging.getLogger(__name__)

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Probes and scrapes every few seconds would drown the worker's own lines."""


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    if path == "/healthz":
        return _reply(start_response, 200, b"ok\n", "text/plain")
    if path == "/readyz":
        status, body = health.readiness()
        return _reply(start_response, status, json.dumps(body).encode(), "application/json")
    if path == "/metrics":
        allowed = metrics.client_allowed(
            authorization=environ.get("HTTP_AUTHORIZATION", ""),
            remote_addr=environ.get("REMOTE_ADDR", ""),
        )
        if not allowed:
            return _reply(start_response, 403, b"forbidden\n", "text/plain")
        exposition = generate_latest(metrics.registry(with_state=False))
        return _reply(start_response, 200, exposition, CONTENT_TYPE_LATEST)
    return _reply(start_response, 404, b"not found\n", "text/plain")


def _reply(start_response: StartResponse, status: int, body: bytes, kind: str) -> list[bytes]:
    reason = {200: "OK", 403: "Forbidden", 404: "Not Found", 503: "Service Unavailable"}
    start_response(f"{status} {reason[status]}", [("Content-Type", kind)])
    return [body]


def serve(port: int, host: str = "0.0.0.0") -> WSGIServer:  # noqa: S104 - a pod's probe port
    server = make_server(host, port, app, server_class=_Server, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="worker-http", daemon=True).start()
    logger.info("worker probes and metrics at http://%s:%s/", host, server.server_port)
    return server
