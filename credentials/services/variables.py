"""Values of a server's custom_user_vars, per user or per agent: stored encrypted, audited
by name only, substituted into ${NAME} by resolve."""

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from audit.models import AuditEvent
from audit.services import REDACTED, audit_event_create
from credentials.models import VariableValue
from mcpcontrol.lib import secret_refs
from mcpcontrol.lib.headers import value_error
from servers.models import Agent, McpServer


def variables_set(
    *,
    server: McpServer,
    values: dict[str, str | None],
    actor: Any,
    user: Any = None,
    agent: Agent | None = None,
) -> list[str]:
    """Set (or, with None or "", remove) values of declared variables for `user` or `agent`.

    Raises ValidationError naming a variable the server does not declare. Returns the names
    that now hold a value for that principal.

    1. Check the names are declared and the values could be sent.
    2. In one transaction: write or delete each value, and one audit row naming them.
    """
    if (user is None) == (agent is None):
        raise ValueError("give exactly one of user and agent")
    _check_values(server, values)
    owner = {"server": server, "user": user, "agent": agent}
    rows = VariableValue.objects.filter(**owner)
    with transaction.atomic():
        for name, value in sorted(values.items()):
            if value:
                VariableValue.objects.update_or_create(
                    **owner, name=name, defaults={"value": value}
                )
            else:
                rows.filter(name=name).delete()
        changes = {
            name: {"old": None, "new": REDACTED if v else None} for name, v in values.items()
        }
        audit_event_create(
            action=AuditEvent.Action.UPDATE, entity_type="variable", actor=actor,
            entity_id=f"{server.pk}:{'agent' if agent else 'user'}:{(agent or user).pk}",
            changes=changes,
        )  # fmt: skip
    return sorted(rows.values_list("name", flat=True))


def _check_values(server: McpServer, values: dict[str, str | None]) -> None:
    """Only declared variables, with values a header or an environment may carry; a secret
    reference must resolve now."""
    unknown = sorted(set(values) - set(server.custom_user_vars or {}))
    if unknown:
        raise ValidationError({"variables": f"{server.name} declares no {', '.join(unknown)}."})
    for name, value in values.items():
        if value and value_error(value):
            raise ValidationError({name: "A value may not contain CR, LF or NUL."})
        if value and (problem := secret_refs.check(value)):
            raise ValidationError({name: problem})


def variable_names(*, server: McpServer, user: Any = None, agent: Agent | None = None) -> list[str]:
    rows = VariableValue.objects.filter(server=server, user=user, agent=agent)
    return sorted(rows.values_list("name", flat=True))
