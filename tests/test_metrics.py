"""/metrics: what Prometheus scrapes, who may scrape it, and sums across processes."""

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from mcpcontrol import metrics
from mcpcontrol.celery import app as celery_app
from servers.models import McpServer
from tests.factories import GrantFactory, McpServerFactory
from tests.test_logs import json_lines


def scrape(client, **extra) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", **extra)
    assert response.status_code == 200, response.content
    return parse(response.content.decode())


def parse(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.mark.django_db
def test_it_counts_servers_by_status_at_scrape_time(client):
    McpServerFactory.create_batch(2, status=McpServer.Status.ACTIVE)
    McpServerFactory(status=McpServer.Status.ERROR)

    samples = scrape(client)

    assert samples[("mcpcontrol_servers", (("status", "active"),))] == 2
    assert samples[("mcpcontrol_servers", (("status", "error"),))] == 1
    assert samples[("mcpcontrol_servers", (("status", "inactive"),))] == 0


@pytest.mark.sql_only(
    "django-prometheus times queries by wrapping SQL backends (settings.py swaps the ENGINE); "
    "on MongoDB there are no django_db_* metrics (docs/storage.md)"
)
@pytest.mark.django_db
def test_it_exports_the_grant_gauges_the_queue_depth_and_database_metrics(client):
    samples = scrape(client)

    assert ("mcpcontrol_grants_expiring_within_hour", ()) in samples
    assert ("mcpcontrol_grants_needing_reauth", ()) in samples
    assert ("mcpcontrol_celery_queue_depth", (("queue", "celery"),)) in samples
    assert any(name.startswith("django_db_query_duration_seconds") for name, _ in samples)


def test_queue_depth_counts_waiting_tasks_on_the_configured_broker():
    queue = f"depth-{uuid.uuid4().hex}"  # nobody consumes it
    try:
        for _ in range(3):
            celery_app.send_task("celery.accumulate", args=(1,), queue=queue)

        assert metrics.queue_depth(queue) == 3
    finally:
        with celery_app.connection_for_write() as connection:
            connection.default_channel.queue_purge(queue)


@pytest.mark.django_db
def test_the_grant_gauges_count_real_grants():
    now = timezone.now()
    oauth = {"auth_type": "oauth"}
    GrantFactory(server=McpServerFactory(**oauth), expires_at=now + timedelta(minutes=30))
    GrantFactory(server=McpServerFactory(**oauth), expires_at=now + timedelta(days=2))
    GrantFactory(server=McpServerFactory(**oauth), expires_at=now + timedelta(days=2),
                 needs_reauth=True)  # fmt: skip

    assert metrics.grants_expiring_within(seconds=3600) == 1
    assert metrics.grants_needing_reauth() == 1


@pytest.mark.django_db
def test_a_client_outside_the_allow_list_is_refused(client):
    response = client.get("/metrics", REMOTE_ADDR="10.1.2.3")

    assert response.status_code == 403
    assert b"mcpcontrol" not in response.content


@pytest.mark.django_db
def test_an_allowed_network_or_the_token_opens_metrics(client, settings):
    settings.MCPCONTROL_METRICS_ALLOW = ["10.0.0.0/8"]
    settings.MCPCONTROL_METRICS_TOKEN = "scrape-token-0123456789"

    inside = client.get("/metrics", REMOTE_ADDR="10.1.2.3")
    loopback = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    with_token = client.get(
        "/metrics", REMOTE_ADDR="192.0.2.9", HTTP_AUTHORIZATION="Bearer scrape-token-0123456789"
    )
    wrong_token = client.get(
        "/metrics", REMOTE_ADDR="192.0.2.9", HTTP_AUTHORIZATION="Bearer scrape-token-012345678"
    )

    assert (inside.status_code, loopback.status_code) == (200, 403)
    assert (with_token.status_code, wrong_token.status_code) == (200, 403)


@pytest.mark.slow
def test_counters_add_up_across_two_gunicorn_workers(production_server):
    """N requests spread over both workers; one scrape reports all N."""
    url, n = production_server.url, 60
    key = ("django_http_responses_total_by_status_total", (("status", "401"),))
    before = parse(httpx.get(f"{url}/metrics", timeout=10).text).get(key, 0)
    request_ids = [uuid.uuid4().hex for _ in range(n)]

    def hit(request_id: str) -> int:
        headers = {"X-Request-ID": request_id}
        return httpx.get(f"{url}/api/v1/servers", headers=headers, timeout=10).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert set(pool.map(hit, request_ids)) == {401}
    after = parse(httpx.get(f"{url}/metrics", timeout=10).text)[key]

    assert after - before == n
    ids = set(request_ids)
    pids = {
        e["pid"] for e in json_lines(production_server.log_text()) if e.get("request_id") in ids
    }
    assert len(pids) == 2, "both workers must have served some of the requests"
