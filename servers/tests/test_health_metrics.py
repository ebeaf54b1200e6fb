"""What the health engine and the grant refresher count for /metrics, from real checks."""

import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from servers import services
from servers.models import McpServer

HTTP = McpServer.Transport.STREAMABLE_HTTP


@pytest.fixture(autouse=True)
def _own_cache(private_cache: None) -> None:
    pass


def scrape(client) -> dict[tuple[str, tuple], float]:
    text = client.get("/metrics").content.decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _checks(samples: dict, outcome: str) -> float:
    return samples.get(
        ("mcpcontrol_health_checks_total", (("outcome", outcome), ("transport", HTTP))), 0
    )


@pytest.mark.django_db
def test_every_check_counts_by_outcome_and_transport(
    client, make_server, sdk_http_url, refused_url
):
    before = scrape(client)  # counters live for the whole session: compare with before
    ids = [make_server(transport_type=HTTP, url=u).id for u in (sdk_http_url, refused_url)]

    services.servers_check(server_ids=ids, concurrency=2)

    after = scrape(client)
    assert _checks(after, "healthy") - _checks(before, "healthy") == 1
    assert _checks(after, "unreachable") - _checks(before, "unreachable") == 1
    count = ("mcpcontrol_health_check_duration_seconds_count", (("transport", HTTP),))
    assert after[count] - before.get(count, 0) == 2


@pytest.mark.django_db
def test_the_last_batch_of_a_sweep_records_the_sweep_time(client, make_server):
    ids = [make_server(init_timeout_ms=1000, timeout_ms=1000, is_enabled=False).id]
    McpServer.objects.filter(id__in=ids).update(is_enabled=True)
    plan = services.health_sweep_plan(concurrency=1, time_limit=60)
    started = time.time()

    for batch in plan.batches:
        services.servers_check_batch(server_ids=batch, concurrency=1, sweep=True)

    sweep = scrape(client)[("mcpcontrol_health_sweep_last_success_timestamp_seconds", ())]
    assert started <= sweep <= time.time()
