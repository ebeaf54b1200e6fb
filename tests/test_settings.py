"""Start-up configuration: each bad value stops start-up with a message naming the variable."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GOOD_KEY = "J1Vc8tKZYkW2y2nQb3c2ZQ6oQ0dM0Wn6c2v7Zr0Q5hU="


def start(**env: str) -> subprocess.CompletedProcess:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "MCPCONTROL_", "DATABASE_URL", "REDIS_URL"))
    }
    base.update({"DJANGO_SECRET_KEY": "s" * 50, "MCPCONTROL_ENCRYPTION_KEYS": GOOD_KEY, **env})
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); print('started'); {env.get('CODE', '')}"],
        cwd=ROOT, env={**base, "DJANGO_SETTINGS_MODULE": "mcpcontrol.settings"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_good_production_settings_start():
    assert start().stdout.strip() == "started"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"DJANGO_DEBUG": "maybe"}, "DJANGO_DEBUG"),
        ({"DATABASE_URL": "nosuchdb://x"}, "DATABASE_URL"),
        ({"REDIS_URL": "http://127.0.0.1:6379"}, "REDIS_URL"),
        ({"MCPCONTROL_ENCRYPTION_KEYS": "not-a-fernet-key"}, "MCPCONTROL_ENCRYPTION_KEYS"),
        ({"MCPCONTROL_ENCRYPTION_KEYS": ""}, "MCPCONTROL_ENCRYPTION_KEYS is required"),
        ({"DJANGO_SECRET_KEY": ""}, "DJANGO_SECRET_KEY is required"),
        ({"MCPCONTROL_HEALTH_CONCURRENCY": "lots"}, "MCPCONTROL_HEALTH_CONCURRENCY"),
        ({"MCPCONTROL_METRICS_ALLOW": "127.0.0.1,intranet"}, "MCPCONTROL_METRICS_ALLOW"),
        ({"MCPCONTROL_LOG_LEVEL": "chatty"}, "MCPCONTROL_LOG_LEVEL"),
        ({"MCPCONTROL_ADMIN_PASSWORD_FILE": "/nonexistent"}, "MCPCONTROL_ADMIN_PASSWORD_FILE"),
    ],
)
def test_a_bad_value_stops_start_up_naming_the_variable(env, named):
    result = start(**env)

    assert result.returncode != 0
    assert named in result.stderr
    assert "started" not in result.stdout


def test_without_redis_the_cache_is_shared_between_processes(tmp_path):
    """A worker's health outcome must reach the web process in embedded mode too."""
    run_dir = str(tmp_path)
    write = "from django.core.cache import cache; cache.set('probe', 'from-worker', 60)"
    read = "from django.core.cache import cache; print(cache.get('probe'))"

    start(MCPCONTROL_RUN_DIR=run_dir, CODE=write)
    result = start(MCPCONTROL_RUN_DIR=run_dir, CODE=read)

    assert result.stdout.split()[-1] == "from-worker"
