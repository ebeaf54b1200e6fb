"""Probes for orchestrators: /healthz (the process answers) and /readyz (its peers answer).

Readiness uses django-health-check's database and cache checks plus a broker check for the
broker we actually use (Redis, or kombu's filesystem transport in embedded mode).
"""

import asyncio
import dataclasses
import datetime
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import Resolver404, resolve
from health_check import Cache, Database, HealthCheck
from health_check.base import HealthCheckResult
from health_check.contrib.redis import Redis
from health_check.exceptions import ServiceUnavailable
from redis.asyncio import Redis as RedisClient

# Answered before host validation, sessions, auth, throttling and request logging: a kubelet
# probes by pod IP (not an allowed host) every few seconds, and none of that applies to it.
OPS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
CHECK_TIMEOUT = datetime.timedelta(seconds=3)


@dataclasses.dataclass
class FilesystemBroker(HealthCheck):  # type: ignore[misc]  # health_check ships no types
    """kombu's filesystem transport: its message folders can be made and take a new file."""

    folders: tuple[str, ...] = ()

    def run(self) -> None:
        for folder in self.folders:
            probe = Path(folder) / f".readyz-{uuid.uuid4().hex}"
            try:
                probe.parent.mkdir(parents=True, exist_ok=True)  # as the first task would
                probe.write_bytes(b"")
                probe.unlink()
            except OSError as exc:
                raise ServiceUnavailable(f"cannot write to {folder}: {exc.strerror}") from exc


def broker_check() -> HealthCheck:
    url: str = settings.CELERY_BROKER_URL
    if url.startswith("filesystem://"):
        options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
        folders = (str(options["data_folder_in"]), str(options["data_folder_out"]))
        return FilesystemBroker(folders=folders)
    timeout = CHECK_TIMEOUT.total_seconds()
    return Redis(
        client_factory=lambda: RedisClient.from_url(
            url, socket_connect_timeout=timeout, socket_timeout=timeout
        )
    )


@dataclasses.dataclass
class DatabaseRead(HealthCheck):  # type: ignore[misc]  # health_check ships no types
    """The database answers one small read through the ORM. django-health-check's Database
    compiles `SELECT 1` for a cursor, which django-mongodb-backend has none of: on MongoDB it
    reported "unknown error" for ever and /readyz never said ready (docs/storage.md)."""

    alias: str = "default"

    def run(self) -> None:
        from django.contrib.contenttypes.models import ContentType

        try:
            list(ContentType.objects.using(self.alias).order_by().values_list("pk")[:1])
        except Exception as exc:  # any driver's error means "not answering"
            raise ServiceUnavailable(f"Unable to read: {type(exc).__name__}") from exc


def database_check() -> HealthCheck:
    """SELECT 1 where there is SQL; one ORM read where there is none (MongoDB)."""
    from django.db import connection

    return DatabaseRead() if connection.vendor == "mongodb" else Database()


def readiness_checks() -> dict[str, HealthCheck]:
    return {"database": database_check(), "cache": Cache(), "broker": broker_check()}


async def _run(checks: dict[str, HealthCheck]) -> dict[str, HealthCheckResult]:
    results = await asyncio.gather(*(check.get_result() for check in checks.values()))
    return dict(zip(checks, results, strict=True))


def healthz(request: HttpRequest) -> HttpResponse:
    """The process is alive and serving: no I/O, so a slow database never restarts it."""
    return HttpResponse("ok\n", content_type="text/plain")


def readiness() -> tuple[int, dict[str, Any]]:
    """200 when database, cache and broker all answer; 503 naming the ones that do not."""
    results = async_to_sync(_run)(readiness_checks())
    failing = {name: str(r.error) for name, r in results.items() if r.error is not None}
    body = {
        "status": "unavailable" if failing else "ok",
        "checks": {name: failing.get(name, "ok") for name in results},
    }
    return (503 if failing else 200), body


def readyz(request: HttpRequest) -> JsonResponse:
    status, body = readiness()
    return JsonResponse(body, status=status)


class OpsEndpointsMiddleware:
    """Serve OPS_PATHS straight from their URL conf views, ahead of every other middleware."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info in OPS_PATHS:
            try:
                match = resolve(request.path_info)
            except Resolver404:
                return self.get_response(request)
            view: Any = match.func
            response: HttpResponse = view(request, *match.args, **match.kwargs)
            return response
        return self.get_response(request)
