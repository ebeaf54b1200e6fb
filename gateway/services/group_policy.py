"""Per-group tool policies: an administrator's allow/deny globs for every agent of the group's
members (combined with the agent's own as gateway.services.policy says)."""

from typing import Any

from django.contrib.auth.models import Group
from django.db import transaction

from audit.models import AuditEvent
from audit.services import audit_event_create
from gateway.models import GroupPolicy
from gateway.services.policy import check_patterns


def _checked(changes: dict[str, Any]) -> dict[str, Any]:
    return {name: check_patterns(name, value) if name in ("allow", "deny") else value
            for name, value in changes.items()}  # fmt: skip


def group_policy_create(
    *, actor: Any, group: Group, allow: list[str] | None = None, deny: list[str] | None = None
) -> GroupPolicy:
    """The group's policy (one per group: a second is a ValidationError on `group`), audited."""
    values = _checked({"allow": allow or [], "deny": deny or []})
    policy = GroupPolicy(group=group, **values)
    policy.full_clean()
    with transaction.atomic():
        policy.save()
        audit_event_create(
            action=AuditEvent.Action.CREATE, target=policy, actor=actor,
            changes={"group": {"old": None, "new": group.name},
                     **{k: {"old": None, "new": v} for k, v in values.items()}},
        )  # fmt: skip
    return policy


def group_policy_update(*, actor: Any, policy: GroupPolicy, changes: dict[str, Any]) -> GroupPolicy:
    """Apply `changes` (allow, deny) to the policy, audited with old and new values."""
    changes = _checked({k: v for k, v in changes.items() if k in ("allow", "deny")})
    before = {name: getattr(policy, name) for name in changes}
    for name, value in changes.items():
        setattr(policy, name, value)
    policy.full_clean()
    with transaction.atomic():
        # updated_at moves too: the gateway's fingerprint sees the change on the next call.
        policy.save(update_fields=[*changes, "updated_at"])
        audit_event_create(
            action=AuditEvent.Action.UPDATE, target=policy, actor=actor,
            changes={k: {"old": before[k], "new": v} for k, v in changes.items()},
        )  # fmt: skip
    return policy


def group_policy_delete(*, actor: Any, policy: GroupPolicy) -> None:
    """Remove the group's policy (its members' agents are no longer filtered by it), audited."""
    with transaction.atomic():
        audit_event_create(
            action=AuditEvent.Action.DELETE, target=policy, actor=actor,
            changes={"group": {"old": policy.group.name, "new": None},
                     "allow": {"old": policy.allow, "new": None},
                     "deny": {"old": policy.deny, "new": None}},
        )  # fmt: skip
        policy.delete()
