"""Argument capture (MCPCONTROL_GATEWAY_CAPTURE_ARGUMENTS): off by default; on, what is
stored is redacted before it is cut."""

import time

import pytest

from gateway.models import ToolCall
from gateway.services.capture import REDACTED, arguments_captured, credential_secrets
from gateway.services.hotpath import ToolCallBuffer
from servers.mcp_client import Target
from tests.factories import AgentFactory

SECRET = "sk-live-0123456789abcdef"
TARGET = Target(transport="streamable-http", url="https://up.example/mcp?api_key=qs-secret-99",
                headers={"Authorization": f"Bearer {SECRET}"})  # fmt: skip


def test_nothing_is_captured_by_default(settings):
    settings.MCPCONTROL_GATEWAY_CAPTURE_ARGUMENTS = False
    assert arguments_captured({"city": "Paris"}, TARGET) is None


@pytest.fixture
def capture(settings) -> None:
    settings.MCPCONTROL_GATEWAY_CAPTURE_ARGUMENTS = True
    settings.MCPCONTROL_GATEWAY_CAPTURE_MAX_CHARS = 40


def test_values_under_secret_looking_keys_are_redacted(capture):
    stored = arguments_captured(
        {"city": "Paris", "password": "hunter2", "nested": {"apiKey": 1234, "Authorization": "x"}},
        None,
    )
    assert stored == {"city": "Paris", "password": REDACTED,
                      "nested": {"apiKey": REDACTED, "Authorization": REDACTED}}  # fmt: skip


def test_the_calls_credential_is_redacted_wherever_it_appears(capture):
    stored = arguments_captured(
        {"note": f"use {SECRET} please", "list": [SECRET, "qs-secret-99"], SECRET: "as a key"},
        TARGET,
    )
    assert SECRET not in str(stored) and "qs-secret-99" not in str(stored)
    assert stored["note"] == f"use {REDACTED} please"


def test_a_secret_at_the_cut_is_redacted_before_cutting(capture):
    stored = arguments_captured({"text": "x" * 30 + SECRET}, TARGET)
    assert SECRET[:8] not in stored["text"]
    assert stored["text"].startswith("x" * 30 + REDACTED[:10])


def test_long_values_and_deep_nesting_are_bounded(capture):
    deep: dict = {}
    node = deep
    for _ in range(30):
        node["d"] = {}
        node = node["d"]
    stored = arguments_captured({"text": "y" * 5000, "items": list(range(500)), "deep": deep}, None)
    assert stored["text"] == "y" * 40 + "…[4960 more characters]"
    assert len(stored["items"]) == 100
    assert "[nested too deep]" in str(stored["deep"])


def test_stdio_env_values_and_args_count_as_secrets():
    target = Target(transport="stdio", command="srv", args=["--token", "arg-secret-1"],
                    env={"API_TOKEN": "env-secret-1", "MODE": "on"})  # fmt: skip
    found = credential_secrets(target)
    assert "env-secret-1" in found and "arg-secret-1" in found
    assert "on" not in found  # too short to be told from an ordinary word


@pytest.mark.django_db
def test_a_secret_never_lands_in_the_row(capture):
    agent = AgentFactory()
    buffer = ToolCallBuffer()
    arguments = {"query": f"token={SECRET}", "secret": "s", "n": 1}
    buffer.add(agent_id=agent.pk, server_id=None, tool="t", started=time.monotonic(),
               outcome="ok", argument_bytes=10,
               arguments=arguments_captured(arguments, TARGET))  # fmt: skip
    buffer.flush()
    row = ToolCall.objects.get()
    assert row.arguments == {"query": f"token={REDACTED}", "secret": REDACTED, "n": 1}
    assert SECRET not in str(ToolCall.objects.values_list("arguments", flat=True)[0])
