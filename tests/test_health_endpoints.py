"""/healthz says the process serves; /readyz says its database, cache and broker answer."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent


def closed_port() -> int:
    """A loopback port nothing listens on: connecting to it is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_healthz_answers_any_host_without_touching_the_database(client):
    # No django_db mark: any query would raise. A kubelet probes by pod IP, not an allowed host.
    response = client.get("/healthz", HTTP_HOST="10.1.2.3:8000")

    assert response.status_code == 200
    assert response.content == b"ok\n"


@pytest.mark.django_db
def test_readyz_is_ok_when_database_cache_and_broker_answer(client):
    response = client.get("/readyz", HTTP_HOST="10.1.2.3:8000")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "cache": "ok", "broker": "ok"},
    }


@pytest.mark.django_db
def test_readyz_names_an_unreachable_redis_as_cache_and_broker(client, settings):
    redis_url = f"redis://127.0.0.1:{closed_port()}/0"
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url}
    }
    settings.CELERY_BROKER_URL = redis_url

    response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["cache"] != "ok"
    assert "Unable to connect to Redis" in body["checks"]["broker"]


@pytest.mark.django_db
def test_readyz_names_a_filesystem_broker_it_cannot_write_to(client, settings, tmp_path):
    (tmp_path / "not-a-folder").write_text("a file where the broker folder should be")
    broken = str(tmp_path / "not-a-folder" / "broker")
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder_in": broken, "data_folder_out": broken}

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "ok"
    assert response.json()["checks"]["broker"].startswith("Unavailable: cannot write to")


def test_readyz_names_an_unreachable_database():
    """A fresh process whose DATABASE_URL points at a port where no PostgreSQL listens."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mcpcontrol.settings",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{closed_port()}/nothing",
    }
    env.pop("REDIS_URL", None)
    env.pop("MONGO_URI", None)  # MONGO_URI would win over DATABASE_URL (suite run on MongoDB)
    code = (
        "import django, json; django.setup(); from django.test import Client; "
        "r = Client().get('/readyz'); print(json.dumps([r.status_code, r.json()]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )

    status, body = json.loads(result.stdout.strip().splitlines()[-1])
    assert status == 503
    assert body["checks"]["database"].startswith("Unavailable")
    assert body["checks"]["cache"] == "ok"
    assert body["checks"]["broker"] == "ok"


@pytest.mark.slow
def test_probes_answer_on_the_production_server(production_server):
    healthz = httpx.get(f"{production_server.url}/healthz", timeout=10)
    readyz = httpx.get(f"{production_server.url}/readyz", timeout=10)

    assert healthz.status_code == 200
    assert readyz.status_code == 200
    assert readyz.json()["status"] == "ok"
