"""Production settings of the security review (issue 10), read by a fresh process each.

`check --deploy` must be clean for the documented deployment (TLS at a trusted proxy) and
must keep warning where the warning is true (no proxy and no redirect to HTTPS).
"""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GOOD_KEY = "J1Vc8tKZYkW2y2nQb3c2ZQ6oQ0dM0Wn6c2v7Zr0Q5hU="


def _production(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "MCPCONTROL_", "DATABASE_URL", "REDIS_URL"))
    }
    base.update(
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50), MCPCONTROL_ENCRYPTION_KEYS=GOOD_KEY,
        DJANGO_ALLOWED_HOSTS="mcp.example.com", DJANGO_SETTINGS_MODULE="mcpcontrol.settings",
        MCPCONTROL_RUN_DIR=os.environ["MCPCONTROL_RUN_DIR"], **env,
    )  # fmt: skip
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=base, capture_output=True, text=True, timeout=120
    )


def _deploy_check(**env: str) -> subprocess.CompletedProcess:
    return _production("manage.py", "check", "--deploy", "--fail-level", "WARNING", **env)


def _setting(expression: str, **env: str) -> str:
    code = f"import django; django.setup(); from django.conf import settings; print({expression})"
    result = _production("-c", code, **env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_the_deploy_check_is_clean_behind_a_trusted_tls_proxy():
    result = _deploy_check(MCPCONTROL_TRUSTED_PROXIES="1")

    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_the_deploy_check_is_clean_serving_https_directly_with_the_redirect_on():
    result = _deploy_check(MCPCONTROL_SSL_REDIRECT="1")

    assert result.returncode == 0, result.stderr


def test_the_deploy_check_still_warns_when_nothing_redirects_to_https():
    """No trusted proxy and no redirect: W008 is true there, so it is not silenced."""
    result = _deploy_check()

    assert result.returncode != 0
    assert "security.W008" in result.stderr
    assert result.stderr.count("(security.") == 1


def test_production_defaults_send_hsts_for_a_year_and_trust_no_proxy():
    values = _setting(
        "settings.SECURE_HSTS_SECONDS, settings.SECURE_HSTS_INCLUDE_SUBDOMAINS, "
        "settings.SECURE_HSTS_PRELOAD, settings.SECURE_SSL_REDIRECT, "
        "settings.SECURE_PROXY_SSL_HEADER, settings.REST_FRAMEWORK['NUM_PROXIES']"
    )

    assert values == "31536000 True False False None 0"


def test_trusted_proxies_say_which_requests_came_over_https():
    values = _setting(
        "settings.SECURE_PROXY_SSL_HEADER, settings.REST_FRAMEWORK['NUM_PROXIES']",
        MCPCONTROL_TRUSTED_PROXIES="2",
    )

    assert values == "('HTTP_X_FORWARDED_PROTO', 'https') 2"


@pytest.mark.parametrize("name", ["MCPCONTROL_TRUSTED_PROXIES", "MCPCONTROL_HSTS_SECONDS"])
def test_a_bad_value_stops_start_up_naming_the_variable(name):
    result = _production("-c", "import django; django.setup()", **{name: "-1"})

    assert result.returncode != 0
    assert name in result.stderr


def test_postgres_connections_are_health_checked_before_reuse():
    values = _setting(
        "settings.DATABASES['default']['CONN_MAX_AGE'], "
        "settings.DATABASES['default']['CONN_HEALTH_CHECKS']",
        DATABASE_URL="postgres://u@127.0.0.1:5432/db",
    )

    assert values == "60 True"


def test_with_redis_the_cache_degrades_instead_of_failing():
    backend = _setting(
        "settings.CACHES['default']['BACKEND']", REDIS_URL="redis://127.0.0.1:6379/0"
    )

    assert backend == "mcpcontrol.lib.cache.RedisCache"
