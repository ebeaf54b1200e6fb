"""Group policies, rate limits and argument capture through the real gateway (uvicorn on
127.0.0.1, the SDK's client, the echo peer as upstream)."""

import time
from typing import Any

import pytest
from django.core.cache import cache
from mcp import Client

from gateway.models import AgentPolicy, ToolCall
from gateway.services.group_policy import group_policy_create
from gateway.tests.test_gateway_mcp import echo_server, key_for, recorded, run, text
from tests.factories import AgentFactory, GrantFactory, GroupFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_group_policy_hides_and_refuses_a_tool(gateway_url, echo_peer):
    echo_server(echo_peer)
    agent = AgentFactory()
    group = GroupFactory()
    agent.owner.groups.add(group)
    group_policy_create(actor=None, group=group, deny=["*__hang"])

    async def work(client: Client) -> Any:
        names = [t.name for t in (await client.list_tools()).tools]
        return names, await client.call_tool("mcp__echo__hang", {})

    names, refused = run(f"{gateway_url}/mcp/agents/{agent.pk}", key_for(agent), work)
    assert names == ["mcp__echo__whoami", "mcp__echo__add"]
    assert refused.is_error and f"policy of group {group.name!r} denies" in text(refused)
    assert recorded().outcome == "denied"


def test_a_call_over_the_agents_rate_limit_is_refused_with_when_to_retry(gateway_url, echo_peer):
    cache.clear()  # agent ids repeat across transactional tests; their counts must not
    # The windows are the clock's minutes: start early in one, so the three calls share it
    # even on a loaded machine (a boundary between them would rightly admit the third).
    if time.time() % 60 > 30:
        time.sleep(60.5 - time.time() % 60)
    server = echo_server(echo_peer)
    agent = AgentFactory()
    AgentPolicy.objects.create(agent=agent, rate_limit_per_minute=2)

    async def work(client: Client) -> Any:
        return [await client.call_tool("mcp__echo__add", {"a": 1, "b": 1}) for _ in range(3)]

    first, second, third = run(f"{gateway_url}/mcp/agents/{agent.pk}", key_for(agent), work)
    assert text(first) == text(second) == "2"
    assert third.is_error and "2 tool calls per minute" in text(third), text(third)
    assert "retry in" in text(third)
    limited = recorded(outcome="rate_limited")
    assert limited.server_id == server.pk


def test_captured_arguments_never_hold_the_calls_credential(gateway_url, echo_peer, settings):
    settings.MCPCONTROL_GATEWAY_CAPTURE_ARGUMENTS = True
    secret = "upstream-credential-5f2a9c"
    server = echo_server(echo_peer, auth_type="bearer")
    GrantFactory(server=server, secret=secret)
    agent = AgentFactory()

    async def work(client: Client) -> Any:
        return await client.call_tool("mcp__echo__whoami", {"note": f"mine is {secret}",
                                                             "password": "hunter2"})  # fmt: skip

    run(f"{gateway_url}/mcp/agents/{agent.pk}", key_for(agent), work)
    row = recorded(tool="mcp__echo__whoami")
    assert row.arguments == {"note": "mine is [redacted]", "password": "[redacted]"}
    assert secret not in str(list(ToolCall.objects.values_list("arguments", flat=True)))
