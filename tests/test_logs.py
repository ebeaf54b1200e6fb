"""Logs an operator can search: one JSON line per request with its ids, and no secrets.

The request tests read what a real gunicorn (DEBUG off, two workers) wrote to its stderr.
"""

import io
import json
import logging
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
import structlog
from django.conf import settings
from django.http import HttpResponse

from audit.middleware import RequestContextMiddleware
from mcpcontrol.celery import app as celery_app
from mcpcontrol.lib.ids import is_id
from mcpcontrol.logs import RequestLogMiddleware, bind_server_id, redact

ROOT = Path(__file__).resolve().parent.parent


def json_lines(text: str) -> list[dict]:
    # gunicorn's own start/stop lines ("[date] [pid] [INFO] Booting worker") are not ours.
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def lines_for(server, request_id: str, wait: float = 5.0) -> list[dict]:
    """The lines carrying request_id, waiting briefly for the worker to flush them."""
    deadline = time.monotonic() + wait
    while True:
        found = [e for e in json_lines(server.log_text()) if e.get("request_id") == request_id]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def get(server, path: str, **headers: str) -> tuple[str, httpx.Response]:
    request_id = uuid.uuid4().hex
    response = httpx.get(
        f"{server.url}{path}", headers={"X-Request-ID": request_id, **headers}, timeout=10
    )
    return request_id, response


def access_token(server) -> str:
    response = httpx.post(
        f"{server.url}/api/v1/auth/token",
        json={"username": "admin", "password": server.admin_password},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access"])


@pytest.mark.parametrize(
    ("path", "status"),
    [("/no-such-page/", 404), ("/api/v1/no-such-thing", 404), ("/api/v1/servers", 401)],
)
@pytest.mark.slow
def test_an_error_response_is_logged_once(production_server, path, status):
    request_id, response = get(production_server, path)

    assert response.status_code == status
    assert response.headers["X-Request-ID"] == request_id  # one id, not two
    [line] = lines_for(production_server, request_id)
    assert line["event"] == "request"
    assert line["status"] == status
    assert line["path"] == path
    assert line["level"] == "warning"


@pytest.mark.slow
def test_a_request_line_names_the_jwt_user(production_server):
    token = access_token(production_server)

    request_id, response = get(
        production_server, "/api/v1/servers", Authorization=f"Bearer {token}"
    )

    assert response.status_code == 200
    [line] = lines_for(production_server, request_id)
    assert line["status"] == 200
    # The admin ensure_admin created first: id 1 on SQL, an ObjectId string on MongoDB.
    assert line["user_id"] == 1 or (settings.MONGO_URI and is_id(line["user_id"]))
    assert line["level"] == "info"
    assert {"timestamp", "pid", "duration_ms", "method", "ip"} <= line.keys()
    assert token not in production_server.log_text()


@pytest.mark.slow
def test_the_oauth_callback_code_and_state_reach_no_log_line(production_server):
    code, state = f"code-{uuid.uuid4().hex}", f"state-{uuid.uuid4().hex}"

    request_id, _ = get(production_server, f"/oauth/callback?code={code}&state={state}")
    other_id, _ = get(production_server, f"/no-such-page/?token={code}&refresh_token={state}")

    [line] = lines_for(production_server, request_id)
    assert line["path"] == "/oauth/callback?[redacted]"
    [other] = lines_for(production_server, other_id)
    assert other["path"] == "/no-such-page/?token=[redacted]&refresh_token=[redacted]"
    text = production_server.log_text()
    assert code not in text
    assert state not in text


@pytest.mark.slow
def test_no_configured_secret_reaches_the_log(production_server):
    get(production_server, "/admin/login/")
    access_token(production_server)

    text = production_server.log_text()
    env = production_server.env
    secrets = [
        env["DJANGO_SECRET_KEY"],
        env["MCPCONTROL_ADMIN_PASSWORD"],
        *env["MCPCONTROL_ENCRYPTION_KEYS"].split(","),
    ]
    assert [s for s in secrets if s in text] == []


@pytest.mark.slow
def test_probes_and_scrapes_write_no_request_line(production_server):
    for path in ("/healthz", "/readyz", "/metrics"):
        request_id, response = get(production_server, path)
        assert response.status_code == 200

        # A line is written before its response is sent, so none is coming later either.
        assert lines_for(production_server, request_id, wait=0) == []
    paths = {e.get("path") for e in json_lines(production_server.log_text())}
    assert not {"/healthz", "/readyz", "/metrics"} & paths


def test_redact_masks_credentials_in_query_strings():
    assert redact("GET /oauth/callback?code=abc&state=xyz") == "GET /oauth/callback?[redacted]"
    assert redact("/x?access_token=a&page=2&client_secret=s") == (
        "/x?access_token=[redacted]&page=2&client_secret=[redacted]"
    )
    assert redact("https://as.example/token?grant=1&Code=c") == (
        "https://as.example/token?grant=1&Code=[redacted]"
    )
    assert redact("/x?postcode=12345&zipcode=1") == "/x?postcode=12345&zipcode=1"


@pytest.mark.slow
def test_a_task_line_carries_its_task_id_and_the_request_id_that_enqueued_it(tmp_path):
    """A real worker on a filesystem broker; the task is sent inside a request's context."""
    run_dir = tmp_path / "run"
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DJANGO_DEBUG")},
        "MCPCONTROL_RUN_DIR": str(run_dir),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    log = tmp_path / "worker.log"
    with log.open("wb") as sink:
        worker = subprocess.Popen(
            [str(Path(sys.executable).with_name("celery")), "-A", "mcpcontrol", "worker",
             "--pool=solo", "-l", "INFO", "--without-gossip", "--without-mingle",
             "--without-heartbeat"],
            cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        request_id = uuid.uuid4().hex
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            sent = _send_on_broker(run_dir, "celery.accumulate", args=(1, 2))
        started = _wait_for_line(log, lambda e: e.get("event") == "task_succeeded")
    finally:
        worker.terminate()
        worker.wait(timeout=30)

    assert started["task_id"] == sent
    assert started["request_id"] == request_id


def _send_on_broker(run_dir: Path, name: str, args: tuple) -> str:
    """Publish with this process's Celery app onto the worker's filesystem broker."""
    folders = {
        "data_folder_in": str(run_dir / "broker"),
        "data_folder_out": str(run_dir / "broker"),
        "control_folder": str(run_dir / "broker-control"),
    }
    for folder in folders.values():
        Path(folder).mkdir(parents=True, exist_ok=True)
    with celery_app.connection_for_write("filesystem://", transport_options=folders) as connection:
        result = celery_app.send_task(name, args=args, connection=connection)
    return str(result.id)


def _wait_for_line(log: Path, wanted, seconds: float = 60) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for entry in json_lines(log.read_text(errors="replace")):
            if wanted(entry):
                return entry
        time.sleep(0.2)
    raise AssertionError(f"no such line in the worker log:\n{log.read_text()[-3000:]}")


def test_a_bound_server_id_tags_the_rest_of_its_request_only(rf):
    """What a view gets from bind_server_id, through the formatter the settings configure."""
    formatter = next(
        h.formatter
        for h in logging.getLogger().handlers
        if isinstance(h.formatter, structlog.stdlib.ProcessorFormatter)
    )
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)

    def checking_view(request):
        bind_server_id(42)
        logging.getLogger("servers.example").warning("checking %s", "it")
        return HttpResponse()

    logging.getLogger().addHandler(handler)
    try:
        RequestContextMiddleware(RequestLogMiddleware(checking_view))(rf.get("/one"))
        RequestContextMiddleware(RequestLogMiddleware(lambda r: HttpResponse()))(rf.get("/two"))
    finally:
        logging.getLogger().removeHandler(handler)

    lines = json_lines(stream.getvalue())
    assert [(e["event"], e.get("server_id")) for e in lines] == [
        ("checking it", 42),
        ("request", 42),
        ("request", None),
    ]
    assert lines[0]["request_id"] == lines[1]["request_id"] != lines[2]["request_id"]
