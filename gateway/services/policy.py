"""Per-agent tool policy: which naming convention it sees, which tools it may list and call."""

import fnmatch
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from audit.models import AuditEvent
from audit.services import audit_event_create
from gateway.models import AgentPolicy
from servers.models import Agent

MAX_PATTERNS = 100


def agent_policy_get(*, agent: Agent) -> AgentPolicy:
    """The agent's policy; an agent that never set one gets the defaults (not saved)."""
    found = AgentPolicy.objects.filter(agent=agent).first()
    return found if found is not None else AgentPolicy(agent=agent)


def _check_patterns(field: str, value: Any) -> list[str]:
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
            changes[name] = _check_patterns(name, changes[name])
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
