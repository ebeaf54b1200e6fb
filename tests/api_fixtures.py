"""Fixtures for the whole suite (registered in the root conftest.py): API clients and isolation.

Clients authenticate with real JWTs from the same service the API uses, so scope checks run
exactly as for REST clients.
"""

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from mcpcontrol.api.jwt import jwt_pair_for
from mcpcontrol.api.permissions import role_scopes
from mcpcontrol.celery import app as celery_app
from tests.factories import AdminFactory, UserFactory


@pytest.fixture(autouse=True)
def _api_test_setup(settings: Any) -> None:
    # Throttle counters and health states live in the cache: no test sees another's.
    cache.clear()
    # PBKDF2 costs ~100 ms per user; the tests create hundreds.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Pages render without collectstatic: the manifest storage of DEBUG-off settings needs
    # its files collected (tests/test_static_files.py checks that path on a real server).
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


def client_for(user: Any, scopes: list[str] | None = None) -> APIClient:
    client = APIClient()
    granted = role_scopes(user) if scopes is None else scopes
    access = jwt_pair_for(user=user, scopes=granted).access_token
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    client.user = user  # type: ignore[attr-defined]
    return client


@pytest.fixture
def celery_eager() -> Iterator[None]:
    """Run tasks inline. Retries then run at once too (no backoff sleep), still bounded."""
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    try:
        yield
    finally:
        celery_app.conf.task_always_eager = before


@pytest.fixture
def make_client() -> Callable[..., APIClient]:
    return client_for


@pytest.fixture
def user(db: Any) -> Any:
    return UserFactory()


@pytest.fixture
def admin(db: Any) -> Any:
    return AdminFactory()


@pytest.fixture
def user_api(user: Any) -> APIClient:
    return client_for(user)


@pytest.fixture
def admin_api(admin: Any) -> APIClient:
    return client_for(admin)
