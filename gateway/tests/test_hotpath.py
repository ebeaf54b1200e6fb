"""The gateway's per-worker caches (gateway.services.hotpath): what they reuse, and that every
change they depend on is seen by the next call."""

import time
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from credentials.models import VariableValue
from gateway.api.mcp import Refused, authenticate
from gateway.models import AgentKey, ToolCall
from gateway.services import agent_key_create, agent_key_revoke, agent_policy_set
from gateway.services.catalog import call_target
from gateway.services.hotpath import CACHE_SECONDS, HotPath, ToolCallBuffer
from servers.services import server_set_enabled
from tests.factories import AgentFactory, GrantFactory, McpServerFactory

pytestmark = pytest.mark.django_db

TOOLS = [{"name": "add"}]


@pytest.fixture
def setup() -> Any:
    server = McpServerFactory(name="Echo", url="http://127.0.0.1:9/mcp", tools=TOOLS)
    agent = AgentFactory()
    key, raw = agent_key_create(actor=None, agent=agent, name="k")
    return HotPath(authenticate=authenticate), server, agent, key, f"Bearer {raw}"


def test_a_warm_request_costs_one_query(setup, django_assert_num_queries):
    hot, _, agent, _, bearer = setup
    first = hot.admit(authorization=bearer, agent_id=agent.pk)
    with django_assert_num_queries(1):
        again = hot.admit(authorization=bearer, agent_id=agent.pk)
    assert again is first and list(again.catalog.routes) == ["mcp__echo__add"]


def test_a_revoked_key_is_refused_on_the_next_request(setup):
    hot, _, agent, key, bearer = setup
    hot.admit(authorization=bearer, agent_id=agent.pk)
    agent_key_revoke(actor=None, key=key)
    with pytest.raises(Refused) as refused:
        hot.admit(authorization=bearer, agent_id=agent.pk)
    assert refused.value.status == 401 and not hot.keys


def test_an_expired_key_is_refused_on_the_next_request(setup):
    hot, _, agent, key, bearer = setup
    hot.admit(authorization=bearer, agent_id=agent.pk)
    AgentKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(Refused):
        hot.admit(authorization=bearer, agent_id=agent.pk)


def test_a_cached_key_of_another_agent_is_still_403(setup):
    hot, _, agent, _, bearer = setup
    other = AgentFactory()
    hot.admit(authorization=bearer, agent_id=agent.pk)
    with pytest.raises(Refused) as refused:
        hot.admit(authorization=bearer, agent_id=other.pk)
    assert refused.value.status == 403


def test_a_disabled_server_leaves_the_catalog_at_once(setup):
    hot, server, agent, _, bearer = setup
    hot.admit(authorization=bearer, agent_id=agent.pk)
    server_set_enabled(actor=None, server=server, enabled=False)
    assert hot.admit(authorization=bearer, agent_id=agent.pk).catalog.routes == {}


def test_a_policy_change_applies_at_once(setup):
    hot, _, agent, _, bearer = setup
    hot.admit(authorization=bearer, agent_id=agent.pk)
    agent_policy_set(actor=None, agent=agent, changes={"deny": ["*add"]})
    view = hot.admit(authorization=bearer, agent_id=agent.pk)
    assert "policy" in view.catalog.hidden["mcp__echo__add"]


def test_changed_credentials_and_variables_drop_the_resolved_targets(setup):
    hot, server, agent, _, bearer = setup
    calls: list[int] = []

    def resolve(**kw: Any) -> Any:
        calls.append(kw["server_id"])
        return call_target(**kw)

    view = hot.admit(authorization=bearer, agent_id=agent.pk)
    hot.target(view, server.pk, resolve)
    hot.target(view, server.pk, resolve)
    assert calls == [server.pk]  # resolved once per view
    GrantFactory(server=server, secret="new")
    view = hot.admit(authorization=bearer, agent_id=agent.pk)
    assert view.targets == {}
    VariableValue.objects.create(server=server, agent=agent, name="TEAM", value="x")
    assert hot.admit(authorization=bearer, agent_id=agent.pk) is not view


def test_a_target_never_outlives_its_oauth_tokens_freshness(setup):
    hot, server, agent, _, bearer = setup
    grant = GrantFactory(
        server=server, kind="oauth", expires_at=timezone.now() + timedelta(hours=1)
    )
    view = hot.admit(authorization=bearer, agent_id=agent.pk)
    assert CACHE_SECONDS - 1 < view.until - time.monotonic() <= CACHE_SECONDS
    # Due for refresh (within 5 minutes of expiry): never reused, so call_target refreshes.
    grant.expires_at = timezone.now() + timedelta(minutes=4)
    grant.save(update_fields=["expires_at"])
    due = hot.admit(authorization=bearer, agent_id=agent.pk)
    assert due is not view
    assert hot.admit(authorization=bearer, agent_id=agent.pk) is not due


def test_a_view_expires_after_the_ttl(setup):
    hot, _, agent, _, bearer = setup
    view = hot.admit(authorization=bearer, agent_id=agent.pk)
    view.until -= CACHE_SECONDS + 1
    assert hot.admit(authorization=bearer, agent_id=agent.pk) is not view


def test_last_used_is_written_at_most_once_a_minute(setup):
    hot, _, agent, key, bearer = setup
    hot.admit(authorization=bearer, agent_id=agent.pk)
    first = AgentKey.objects.get(pk=key.pk).last_used_at
    assert first is not None
    AgentKey.objects.filter(pk=key.pk).update(last_used_at=first - timedelta(minutes=2))
    hot.admit(authorization=bearer, agent_id=agent.pk)
    assert AgentKey.objects.get(pk=key.pk).last_used_at == first - timedelta(minutes=2)
    [held] = hot.keys.values()
    held.used_at -= 61
    hot.admit(authorization=bearer, agent_id=agent.pk)
    assert AgentKey.objects.get(pk=key.pk).last_used_at > first


def test_buffered_tool_calls_are_written_by_a_flush(setup):
    _, server, agent, _, _ = setup
    buffer = ToolCallBuffer()
    for outcome in ("ok", "denied"):
        buffer.add(agent_id=agent.pk, server_id=server.pk, tool="mcp__echo__add", started=time.monotonic(),
                   outcome=outcome, argument_bytes=2)  # fmt: skip
    assert not ToolCall.objects.exists()
    assert buffer.flush() == 2 and buffer.rows == []
    assert sorted(ToolCall.objects.values_list("outcome", flat=True)) == ["denied", "ok"]


def test_an_agent_given_to_another_owner_is_seen_at_once(setup):
    hot, _, agent, _, bearer = setup
    hot.admit(authorization=bearer, agent_id=agent.pk)
    other = AgentFactory().owner
    type(agent).objects.filter(pk=agent.pk).update(owner=other)
    view = hot.admit(authorization=bearer, agent_id=agent.pk)
    assert view.agent.owner_id == other.pk
