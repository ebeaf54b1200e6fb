"""Resolving: how a server is reached by one principal, credentials and ${VAR}s filled in.

A pure read. It never refreshes: refreshing is the separate, batched step of
credentials.services.refresh, run before it by the callers that can wait a little.
One call resolves a whole batch (an agent's client config, a health sweep's chunk) in two
queries, whatever its size. Secret references (mcpcontrol.lib.secret_refs) are dereferenced
here, at use: a store waits at most MCPCONTROL_SECRET_REFS_TIMEOUT, once per process while it
is down, and a reference that cannot be had makes only its own server unusable.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from credentials.models import Grant, VariableValue
from mcpcontrol.lib import secret_refs
from mcpcontrol.lib.crypto import DecryptionError
from mcpcontrol.lib.fields import UNREADABLE_MESSAGE, report_unreadable
from servers.credential_port import Need, Resolved
from servers.models import VARIABLE_RE, Agent, McpServer


class Unusable(Exception):
    """The server cannot be reached by this principal; the message says why, in words."""


@dataclass(frozen=True)
class _Inputs:
    """What one batch of needs reads from the database, indexed for lookups."""

    grants: dict[tuple[int, int | None], Grant]
    agent_values: dict[tuple[int, int], dict[str, str]]  # (server, agent) → name → sealed
    user_values: dict[tuple[int, int], dict[str, str]]  # (server, user) → name → sealed


def _load(needs: Sequence[Need]) -> _Inputs:
    server_ids = sorted({server.pk for server, _ in needs})
    agents = {agent.pk: agent for _, agent in needs if agent is not None}
    users = {agent.owner_id for agent in agents.values()}
    users |= {server.owner_id for server, agent in needs if agent is None and server.owner_id}
    grants = Grant.objects.for_needs(server_ids, list(agents))
    values = VariableValue.objects.filter(server_id__in=server_ids).filter(
        agent_id__in=list(agents)
    ) | VariableValue.objects.filter(server_id__in=server_ids, user_id__in=list(users))
    agent_values: dict[tuple[int, int], dict[str, Any]] = {}
    user_values: dict[tuple[int, int], dict[str, Any]] = {}
    for row in values:
        if row.agent_id is not None:
            agent_values.setdefault((row.server_id, row.agent_id), {})[row.name] = row.value
        elif row.user_id is not None:
            user_values.setdefault((row.server_id, row.user_id), {})[row.name] = row.value
    return _Inputs(
        grants={(g.server_id, g.agent_id): g for g in grants},
        agent_values=agent_values,
        user_values=user_values,
    )


def resolve(*, needs: Sequence[Need]) -> dict[int, Resolved]:
    """One Resolved per server id: reachable with these values, or `missing` saying why."""
    inputs = _load(needs)
    resolved: dict[int, Resolved] = {}
    for server, agent in needs:
        try:
            resolved[server.pk] = _resolve_one(server, agent, inputs)
        except Unusable as exc:
            resolved[server.pk] = Resolved(missing=str(exc))
    return resolved


def _grant_for(server: McpServer, agent: Agent | None, inputs: _Inputs) -> Grant:
    if server.credential_mode == McpServer.CredentialMode.PER_AGENT:
        if agent is None:
            raise Unusable(f"{server.name} uses per-agent credentials and no agent was given")
        grant = inputs.grants.get((server.pk, agent.pk))
        if grant is None:
            raise Unusable(f"agent {agent.name} has no credential for {server.name}")
        return grant
    if not _may_share(server, agent):
        raise Unusable(
            f"the owner of {server.name} does not share its credential with other users' agents"
        )
    grant = inputs.grants.get((server.pk, None))
    if grant is None:
        if server.auth_type == McpServer.AuthType.OAUTH:
            raise Unusable(f"{server.name} has no OAuth grant yet: connect it first")
        raise Unusable(f"{server.name} has no {server.auth_type} credential stored")
    return grant


def _may_share(server: McpServer, agent: Agent | None) -> bool:
    """App-wide credentials serve everyone; a user's own server's only their agents, unless
    they chose to share it (docs/security.md)."""
    if server.scope == McpServer.Scope.SHARED_APP or server.share_credential or agent is None:
        return True
    return agent.owner_id == server.owner_id


def _reveal(sealed: Any, *, label: str, pk: object) -> str:
    try:
        return str(sealed.reveal())
    except DecryptionError:
        report_unreadable(label, pk)
        raise Unusable(UNREADABLE_MESSAGE) from None


def _deref(value: str, *, what: str) -> str:
    """The secret a reference names (a plain value as it is); Unusable naming the field."""
    try:
        return secret_refs.deref(value)
    except secret_refs.RefError as exc:
        raise Unusable(f"{what}: {exc}") from None


def _fill(value: str, values: dict[str, str], *, what: str) -> str:
    """An env or header value: a reference's secret as it is, else ${VAR}s substituted."""
    if value.startswith(secret_refs.LITERAL) or secret_refs.is_reference(value):
        return _deref(value, what=what)
    return substitute(value, values)


def credential_value(server: McpServer, agent: Agent | None, inputs: _Inputs) -> str:
    """The secret to present (decrypted): API key, bearer token or OAuth access token."""
    grant = _grant_for(server, agent, inputs)
    if grant.kind != server.auth_type:
        raise Unusable(f"the stored credential is for {grant.kind}, not {server.auth_type}")
    if grant.needs_reauth:
        reason = f": {grant.reauth_reason}" if grant.reauth_reason else ""
        what = "OAuth grant" if grant.kind == Grant.Kind.OAUTH else "credential"
        raise Unusable(f"the {what} for {server.name} needs re-authorization{reason}")
    if grant.secret is None:
        raise Unusable(f"{server.name} has no credential stored")
    if grant.expires_at is not None and grant.expires_at <= timezone.now():
        # Never hand out a token the upstream will refuse: the refresh step renews it.
        raise Unusable(f"the OAuth token for {server.name} expired and is not renewed yet")
    secret = _reveal(grant.secret, label="grant", pk=grant.pk)
    if grant.kind == Grant.Kind.OAUTH:
        return secret  # issued by an authorization server: never read as a reference
    return _deref(secret, what=f"the credential of {server.name}")


def _variables(
    server: McpServer, agent: Agent | None, inputs: _Inputs, token: str
) -> dict[str, str]:
    """Values of the server's declared variables for this principal: the agent's own, else
    its owner's (for a server checked without an agent, the server owner's). An OAuth stdio
    server receives its access token in the variable its document names."""
    user_id = agent.owner_id if agent is not None else server.owner_id
    sealed = dict(inputs.user_values.get((server.pk, user_id or 0), {}))
    if agent is not None:
        sealed.update(inputs.agent_values.get((server.pk, agent.pk), {}))
    values = {
        name: _deref(
            _reveal(value, label="variable", pk=server.pk),
            what=f"variable {name} of {server.name}",
        )
        for name, value in sealed.items()
    }
    token_variable = oauth_token_variable(server)
    if token_variable and token:
        values[token_variable] = token
    for name, spec in (server.custom_user_vars or {}).items():
        if name not in values and isinstance(spec, dict) and spec.get("required"):
            raise Unusable(f"variable {name} of {server.name} has no value")
    return values


def oauth_token_variable(server: McpServer) -> str:
    """The variable an OAuth stdio server gets its access token in: oauth.token_variable, or
    the only variable its document declares (seed 004's GitHub example), else none."""
    if server.auth_type != McpServer.AuthType.OAUTH or server.is_remote:
        return ""
    declared = list(server.custom_user_vars or {})
    return server.oauth_config.token_variable or (declared[0] if len(declared) == 1 else "")


def substitute(text: str, values: dict[str, str]) -> str:
    """${NAME} replaced by its value; a name without a value is left as written."""
    return VARIABLE_RE.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def _resolve_one(server: McpServer, agent: Agent | None, inputs: _Inputs) -> Resolved:
    """Steps: 1. refuse an unreadable row; 2. the credential, if the auth type needs one;
    3. the variables; 4. references dereferenced, the rest substituted, the credential placed."""
    if not server.secrets_readable:
        report_unreadable("server", server.pk)
        raise Unusable(UNREADABLE_MESSAGE)
    token = ""
    if server.auth_type != McpServer.AuthType.NONE:
        token = credential_value(server, agent, inputs)
    values = _variables(server, agent, inputs, token)
    headers = {
        name: _fill(value, values, what=f"header {name} of {server.name}")
        for name, value in (server.headers or {}).items()
    }
    if server.auth_type == McpServer.AuthType.API_KEY:
        headers[server.header_name] = f"{server.prefix}{token}"
    elif server.auth_type != McpServer.AuthType.NONE and server.is_remote:
        headers["Authorization"] = f"Bearer {token}"
    return Resolved(
        url=substitute(server.url, values),
        headers=headers,
        env={
            name: _fill(value, values, what=f"env {name} of {server.name}")
            for name, value in (server.env or {}).items()
        },
        args=[substitute(arg, values) for arg in server.args or []],
    )
