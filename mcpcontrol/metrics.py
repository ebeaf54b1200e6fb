"""Prometheus metrics: what is read at scrape time, and /metrics (the counters our code moves
are in mcpcontrol.lib.metrics).

Counters and histograms live in prometheus_client's multiprocess files (PROMETHEUS_MULTIPROC_DIR,
set in settings), so gunicorn workers and Celery pool children each write their own file and a
scrape adds them up. Gauges that describe the database or the broker are not counted at all:
collectors read them when Prometheus scrapes, so every web process reports the same truth.
django-prometheus adds the HTTP and database metrics.
"""

import hmac
import ipaddress
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from credentials.models import Grant

logger = logging.getLogger(__name__)


def grants_expiring_within(*, seconds: int) -> int:
    """OAuth grants whose access token expires within `seconds` (and no one must reconnect)."""
    soon = timezone.now() + timedelta(seconds=seconds)
    return Grant.objects.filter(
        kind=Grant.Kind.OAUTH, needs_reauth=False, expires_at__lt=soon
    ).count()


def grants_needing_reauth() -> int:
    """OAuth grants a user must authorize again."""
    return Grant.objects.filter(needs_reauth=True).count()


def queue_depth(queue: str) -> int:
    """Messages waiting in a Celery queue: a Redis list, or files in the filesystem broker."""
    url: str = settings.CELERY_BROKER_URL
    if url.startswith("filesystem://"):
        folder = Path(str(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]))
        return sum(1 for _ in folder.glob(f"*.{queue}.msg"))
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        return int(client.llen(queue))
    finally:
        client.close()


class StateCollector(Collector):
    """Gauges read from the database and the broker at scrape time."""

    def collect(self) -> Iterator[Metric]:
        servers = self._servers_by_status()
        if servers is not None:
            yield servers
        yield GaugeMetricFamily(
            "mcpcontrol_grants_expiring_within_hour",
            "OAuth grants whose access token expires within the hour.",
            value=grants_expiring_within(seconds=3600),
        )
        yield GaugeMetricFamily(
            "mcpcontrol_grants_needing_reauth",
            "OAuth grants a user must authorize again.",
            value=grants_needing_reauth(),
        )
        depth = self._queue_depth()
        if depth is not None:
            yield depth

    @staticmethod
    def _servers_by_status() -> GaugeMetricFamily | None:
        server_model = apps.get_model("servers", "McpServer")
        family = GaugeMetricFamily(
            "mcpcontrol_servers", "Registered MCP servers, by status.", labels=["status"]
        )
        try:
            counts = dict(
                server_model.objects.values_list("status").annotate(n=Count("id")).order_by()
            )
        except DatabaseError:
            # A scrape must still answer when the database does not; /readyz reports it.
            logger.warning("cannot count servers by status", exc_info=True)
            return None
        for status in server_model.Status.values:
            family.add_metric([status], counts.get(status, 0))
        return family

    @staticmethod
    def _queue_depth() -> GaugeMetricFamily | None:
        from mcpcontrol.celery import app

        queue = app.conf.task_default_queue
        try:
            depth = queue_depth(queue)
        except Exception:
            # A scrape must still answer when the broker does not; /readyz reports it.
            logger.warning("cannot read the depth of Celery queue %s", queue, exc_info=True)
            return None
        family = GaugeMetricFamily(
            "mcpcontrol_celery_queue_depth", "Tasks waiting in a Celery queue.", labels=["queue"]
        )
        family.add_metric([queue], depth)
        return family


def client_allowed(*, authorization: str, remote_addr: str) -> bool:
    """The scraper sent MCPCONTROL_METRICS_TOKEN, or comes from MCPCONTROL_METRICS_ALLOW."""
    token: str = settings.MCPCONTROL_METRICS_TOKEN
    if token and hmac.compare_digest(authorization.encode(), f"Bearer {token}".encode()):
        return True
    try:
        client = ipaddress.ip_address(remote_addr)
    except ValueError:
        return False
    return any(
        client in ipaddress.ip_network(network, strict=False)
        for network in settings.MCPCONTROL_METRICS_ALLOW
    )


def registry(*, with_state: bool = True) -> CollectorRegistry:
    """Every process's counters (multiprocess mode, see settings) plus the scrape-time state.

    A Celery worker's own endpoint leaves the state out: the web processes report it, and
    the same gauge from every pod would only add up to nonsense.
    """
    merged = CollectorRegistry()
    multiprocess.MultiProcessCollector(  # type: ignore[no-untyped-call]
        merged, path=str(settings.PROMETHEUS_MULTIPROC_DIR)
    )
    if with_state:
        merged.register(StateCollector())
    return merged


def metrics_view(request: HttpRequest) -> HttpResponse:
    """GET /metrics for Prometheus; 403 unless the scraper has the token or an allowed IP."""
    allowed = client_allowed(
        authorization=request.headers.get("Authorization", ""),
        remote_addr=request.META.get("REMOTE_ADDR", ""),
    )
    if not allowed:
        return HttpResponse("forbidden\n", status=403, content_type="text/plain")
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)
