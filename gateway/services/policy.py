"""Per-agent tool policy: which naming convention it sees, which tools it may list and call,
and how that combines with the policies of its owner's groups (docs/gateway.md, "Policy").

The combination rule: every policy that applies (the agent's own, and one per group of its
owner that has one) is a filter, and a tool is offered only when it passes them all. So a
deny anywhere wins, every non-empty allow list must match, and policies only ever take
tools away: being in one more group never grants a tool, and an agent's owner cannot widen
what an administrator's group policy allows.
"""

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from audit.models import AuditEvent
from audit.services import audit_event_create
from gateway.models import AgentPolicy, GroupPolicy
from servers.models import Agent

MAX_PATTERNS = 100


def agent_policy_get(*, agent: Agent) -> AgentPolicy:
    """The agent's policy; an agent that never set one gets the defaults (not saved)."""
    found = AgentPolicy.objects.filter(agent=agent).first()
    return found if found is not None else AgentPolicy(agent=agent)


def check_patterns(field: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(p, str) and p for p in value):
        raise ValidationError({field: "a list of non-empty glob patterns"})
    if len(value) > MAX_PATTERNS:
        raise ValidationError({field: f"at most {MAX_PATTERNS} patterns"})
    return value


def agent_policy_set(*, actor: Any, agent: Agent, changes: dict[str, Any]) -> AgentPolicy:
    """Apply `changes` (naming, allow, deny) to the agent's policy, audited."""
    policy = agent_policy_get(agent=agent)
    before = {name: getattr(policy, name) for name in changes}
    for name in ("allow", "deny"):
        if name in changes:
            changes[name] = check_patterns(name, changes[name])
    for name, value in changes.items():
        setattr(policy, name, value)
    policy.full_clean()
    with transaction.atomic():
        policy.save()
        audit_event_create(
            action=AuditEvent.Action.UPDATE, target=policy, actor=actor,
            changes={k: {"old": before[k], "new": v} for k, v in changes.items()},
        )  # fmt: skip
    return policy


def policy_allows(policy: AgentPolicy, name: str) -> bool:
    """Deny wins over allow; an empty allow list allows every tool not denied."""
    if any(fnmatch.fnmatchcase(name, pattern) for pattern in policy.deny):
        return False
    return not policy.allow or any(fnmatch.fnmatchcase(name, p) for p in policy.allow)


@dataclass(frozen=True, kw_only=True)
class ToolFilter:
    """One policy's globs, and whose policy it is (said when it refuses a tool)."""

    source: str
    allow: Sequence[str]
    deny: Sequence[str]

    def refuses(self, name: str) -> bool:
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in self.deny):
            return True
        return bool(self.allow) and not any(fnmatch.fnmatchcase(name, p) for p in self.allow)


def agent_tool_filters(*, agent: Agent, policy: AgentPolicy) -> list[ToolFilter]:
    """The agent's own filter, then one per group of its owner that has a gateway policy."""
    filters = [ToolFilter(source="the agent's gateway policy", allow=policy.allow,
                          deny=policy.deny)]  # fmt: skip
    groups = GroupPolicy.objects.of_user(agent.owner_id).select_related("group").order_by("id")
    filters += [ToolFilter(source=f"the gateway policy of group {g.group.name!r}",
                           allow=g.allow, deny=g.deny) for g in groups]  # fmt: skip
    return filters


def tool_refused_by(filters: Sequence[ToolFilter], name: str) -> str | None:
    """Why the tool is not offered ("... denies this tool"), or None when every filter passes."""
    for candidate in filters:
        if candidate.refuses(name):
            return f"{candidate.source} denies this tool"
    return None


def agent_rate_limit(policy: AgentPolicy) -> int:
    """tools/call per minute the agent may make; 0 is unlimited. The agent's own setting
    (0 included) wins over MCPCONTROL_GATEWAY_RATE_LIMIT."""
    if policy.rate_limit_per_minute is not None:
        return policy.rate_limit_per_minute
    return int(settings.MCPCONTROL_GATEWAY_RATE_LIMIT)
