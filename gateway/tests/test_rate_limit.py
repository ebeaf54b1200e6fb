"""Per-agent rate limits on tools/call (gateway.services.ratelimit): counted in Django's cache
(the file cache of the test run folder here, Redis in production), failing open."""

import logging
import socket
from typing import Any

import pytest
from django.core.cache import cache

from gateway.models import AgentPolicy
from gateway.services import ratelimit
from gateway.services.catalog import agent_catalog
from gateway.services.policy import agent_rate_limit
from gateway.services.ratelimit import rate_limit_refusal, rate_limit_retry_after
from mcpcontrol.lib.cache import RedisCache
from tests.api_fixtures import client_for
from tests.factories import AgentFactory

MINUTE_START = 1_800_000_000.0 - 1_800_000_000.0 % 60  # the start of some minute


@pytest.fixture(autouse=True)
def fresh_counts() -> None:
    cache.clear()  # agent ids repeat between tests; their counts must not


def test_calls_within_the_limit_go_ahead_and_the_next_is_told_when_to_retry():
    now = MINUTE_START + 15
    assert [rate_limit_retry_after(agent_id=1, per_minute=3, now=now) for _ in range(3)] == [
        None, None, None]  # fmt: skip
    assert rate_limit_retry_after(agent_id=1, per_minute=3, now=now) == 45


def test_the_next_minute_admits_calls_again():
    for _ in range(2):
        rate_limit_retry_after(agent_id=1, per_minute=1, now=MINUTE_START + 59)
    assert rate_limit_retry_after(agent_id=1, per_minute=1, now=MINUTE_START + 60) is None


def test_each_agent_has_its_own_count():
    rate_limit_retry_after(agent_id=1, per_minute=1, now=MINUTE_START)
    assert rate_limit_retry_after(agent_id=2, per_minute=1, now=MINUTE_START) is None
    assert rate_limit_retry_after(agent_id=1, per_minute=1, now=MINUTE_START) == 60


def test_a_limit_of_zero_never_counts():
    for _ in range(5):
        assert rate_limit_retry_after(agent_id=1, per_minute=0, now=MINUTE_START) is None
    assert cache.get(f"gateway:rate:1:{int(MINUTE_START // 60)}") is None


def test_the_refusal_says_the_limit_and_when_to_retry():
    import anyio

    async def twice() -> list[str | None]:
        return [await rate_limit_refusal(agent_id=7, per_minute=1) for _ in range(2)]

    first, second = anyio.run(twice)
    assert first is None
    assert second is not None and "1 tool calls per minute" in second and "retry in" in second


def test_a_cache_outage_lets_calls_through_and_is_logged_once(monkeypatch, caplog):
    with socket.socket() as sock:  # bound, then closed: a Redis port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    down = RedisCache(f"redis://127.0.0.1:{port}/0", {"OPTIONS": {"socket_connect_timeout": 1}})
    monkeypatch.setattr(ratelimit, "cache", down)
    monkeypatch.setattr(ratelimit._FailOpen, "failing", False)
    with caplog.at_level(logging.WARNING, logger="gateway.services.ratelimit"):
        results = [rate_limit_retry_after(agent_id=1, per_minute=1) for _ in range(5)]
    assert results == [None] * 5
    mine = [r for r in caplog.records if r.name == "gateway.services.ratelimit"]
    assert [r.getMessage().split(" (")[0] for r in mine] == [
        "rate limits not enforced: the cache cannot count"
    ]


# --- Where the limit comes from ------------------------------------------------------------


def test_the_agents_own_limit_wins_over_the_default(settings):
    settings.MCPCONTROL_GATEWAY_RATE_LIMIT = 100
    assert agent_rate_limit(AgentPolicy()) == 100
    assert agent_rate_limit(AgentPolicy(rate_limit_per_minute=5)) == 5
    assert agent_rate_limit(AgentPolicy(rate_limit_per_minute=0)) == 0  # lifted for this one


@pytest.mark.django_db
def test_the_catalog_carries_the_limit(settings):
    settings.MCPCONTROL_GATEWAY_RATE_LIMIT = 30
    assert agent_catalog(agent=AgentFactory()).rate_limit == 30


@pytest.mark.django_db
def test_an_agents_owner_cannot_lift_its_limit(user_api, user):
    agent = AgentFactory(owner=user)
    url = f"/api/v1/agents/{agent.pk}/gateway-policy"
    response = user_api.patch(url, {"rate_limit_per_minute": 0}, format="json")
    assert response.status_code == 403 and response.json()["error"] == "forbidden"
    assert user_api.patch(url, {"deny": ["x"]}, format="json").status_code == 200


@pytest.mark.django_db
def test_an_administrator_sets_an_agents_limit(admin_api):
    agent = AgentFactory()
    url = f"/api/v1/agents/{agent.pk}/gateway-policy"
    response = admin_api.patch(url, {"rate_limit_per_minute": 10}, format="json")
    assert response.status_code == 200 and response.json()["rate_limit_per_minute"] == 10
    bad = admin_api.patch(url, {"rate_limit_per_minute": -1}, format="json")
    assert bad.status_code == 400 and bad.json()["error"] == "validation_error"


@pytest.mark.django_db
def test_the_owner_reads_the_limit(user):
    agent = AgentFactory(owner=user)
    AgentPolicy.objects.create(agent=agent, rate_limit_per_minute=4)
    body: dict[str, Any] = client_for(user).get(f"/api/v1/agents/{agent.pk}/gateway-policy").json()
    assert body["rate_limit_per_minute"] == 4
