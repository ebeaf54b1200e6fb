"""The gateway's services: API keys, policy, and the tool calls routed to upstreams."""

from gateway.services.keys import (
    KeyRejected,
    agent_key_authenticate,
    agent_key_create,
    agent_key_revoke,
)
from gateway.services.policy import agent_policy_get, agent_policy_set, policy_allows

__all__ = [
    "KeyRejected",
    "agent_key_authenticate",
    "agent_key_create",
    "agent_key_revoke",
    "agent_policy_get",
    "agent_policy_set",
    "policy_allows",
]
