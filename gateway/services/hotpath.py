"""The gateway's per-call work, cached per worker process: who the key is, what the agent sees,
how each of its servers is reached; and the ToolCall rows, written in batches off the call.

Consistency (docs/gateway.md, "Caching"): every request runs one query, the *fingerprint*,
that re-checks the key (not revoked, not expired) and sums up everything the cached catalog
and targets were built from: the servers the owner may use (count, latest updated_at,
latest tools sync), the agent's and the shared grants on them, the owner's and the agent's
variables, the agent's policy, the owner's groups (count, lowest and highest id) and their
gateway policies (count, latest update). Every service that changes one of those bumps its
updated_at (or removes a row, which changes a count), so a change is seen by the next call;
the TTL only bounds what the fingerprint cannot see (a swap of one group for another
between the lowest and highest ids, in one save). A cached target never outlives its OAuth
token's freshness window: it expires 5 minutes before the earliest grant does, when
call_target would refresh it.

All of it runs on the one thread sync_to_async uses (thread_sensitive), so the dicts need
no lock.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import (
    DateTimeField,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.utils import timezone

from gateway.models import (
    KEY_PREFIX,
    LOOKUP_CHARS,
    AgentKey,
    AgentPolicy,
    GroupPolicy,
    ToolCall,
    key_digest,
)
from gateway.services.catalog import Catalog, agent_catalog
from gateway.services.keys import LAST_USED_RESOLUTION, KeyRejected, agent_key_authenticate
from mcpcontrol.lib.metrics import record_gateway_call
from mcpcontrol.lib.queries import CompiledQuery, scalar_aggregate
from servers.credential_port import credentials
from servers.mcp_client import Target
from servers.models import Agent, McpServer

logger = logging.getLogger(__name__)

CACHE_SECONDS = 5.0  # how long a key, catalog or target is reused without a rebuild
REFRESH_MARGIN = timedelta(minutes=5)  # as credentials' refresh: due 5 minutes before expiry
FLUSH_SECONDS = 1.0
FLUSH_ROWS = 200
MAX_BUFFERED = 20_000  # rows kept while the database refuses them; older ones are dropped
MAX_QUERIES = 10_000  # prepared fingerprint queries kept per worker
EXPIRES, OWNER = 5, 9  # where the earliest grant expiry and the owner sit in a fingerprint


def fingerprint_query(*, agent: Agent, key_id: int | None) -> "QuerySet[Any]":
    """One query: the key's state, and a summary that changes whenever the agent's catalog
    or targets would (module docstring). It holds no time, so it is built and compiled to
    SQL once per agent and key and re-run (building and compiling are most of its cost)."""
    usable = McpServer.objects.usable_by(agent.owner)
    servers = McpServer.objects.filter(pk__in=usable.values("pk"))
    policy = AgentPolicy.objects.filter(agent=agent)
    stamp, count = DateTimeField(), IntegerField()
    # Credentials and variables through the port, as subqueries of this one query.
    held = credentials().version_expressions(agent=agent, server_ids=usable.values("pk"))
    values: dict[str, Any] = {
        "s_n": scalar_aggregate(servers, "COUNT", "pk", count),
        "s_at": scalar_aggregate(servers, "MAX", "updated_at", stamp),
        "s_sync": scalar_aggregate(servers, "MAX", "tools_last_synced_at", stamp),
        "g_n": held["grants"],
        "g_at": held["grants_at"],
        "g_exp": held["expires"],
        "v_n": held["variables"],
        "v_at": held["variables_at"],
        "p_at": Subquery(policy.values("updated_at")[:1]),
        "owner": F("owner_id"),  # the query was built for this owner
        **_group_expressions(agent.owner_id),
    }
    if key_id is not None:  # compared with the clock in fingerprint(), not in the query
        key = AgentKey.objects.filter(pk=key_id, agent=OuterRef("pk"))
        values["k_id"] = Subquery(key.values("pk")[:1])
        values["k_revoked"] = Subquery(key.values("revoked_at")[:1])
        values["k_expires"] = Subquery(key.values("expires_at")[:1])
    return Agent.objects.filter(pk=agent.pk).values_list(*values.values())


def _group_expressions(owner_id: int) -> dict[str, Any]:
    """The owner's group memberships and the gateway policies of those groups (policy and,
    for servers shared with a group, usability follow them). The membership rows have no
    timestamp: their count and lowest and highest group id stand in for one."""
    memberships = get_user_model().groups.through.objects.filter(user_id=owner_id)
    policies = GroupPolicy.objects.of_user(owner_id)
    count = IntegerField()
    group_id = memberships.model._meta.get_field("group").target_field  # int, or ObjectId
    return {
        "m_n": scalar_aggregate(memberships, "COUNT", "pk", count),
        "m_lo": scalar_aggregate(memberships, "MIN", "group_id", group_id),
        "m_hi": scalar_aggregate(memberships, "MAX", "group_id", group_id),
        "gp_n": scalar_aggregate(policies, "COUNT", "pk", count),
        "gp_at": scalar_aggregate(policies, "MAX", "updated_at", DateTimeField()),
    }


def fingerprint(query: CompiledQuery, *, keyed: bool) -> tuple[Any, ...]:
    """Run a fingerprint_query: () when the agent is gone; with a key, the row ends with
    whether the key is still usable (exists, not revoked, not expired)."""
    rows = query.rows()
    if not rows:
        return ()
    row = tuple(rows[0])
    if not keyed:
        return row
    key_id, revoked, expires = row[-3:]
    usable = key_id is not None and revoked is None
    return (*row[:-3], usable and (expires is None or expires > timezone.now()))


@dataclass(kw_only=True)
class _Key:
    key_id: int
    agent: Agent
    expires_at: datetime | None
    until: float  # monotonic: reuse until then
    used_at: float  # monotonic: when last_used_at was last written from here


@dataclass(kw_only=True)
class View:
    """One agent's catalog and the targets resolved so far, valid while `state` holds."""

    agent: Agent
    state: tuple[Any, ...]
    until: float
    catalog: Catalog
    targets: dict[int, Target | str] = field(default_factory=dict)


def _until(now: float, expires: datetime | None) -> float:
    """Cache until now + CACHE_SECONDS, but not into the earliest token's refresh window."""
    if expires is None:
        return now + CACHE_SECONDS
    fresh = (expires - REFRESH_MARGIN - timezone.now()).total_seconds()
    return now + max(0.0, min(CACHE_SECONDS, fresh))


class HotPath:
    """The per-worker caches (module docstring). `authenticate` is the gateway's own check,
    used for every miss and every non-key bearer, so its answers (401/403/404) stay its own."""

    def __init__(self, *, authenticate: Callable[..., Agent]) -> None:
        self.authenticate = authenticate
        self.keys: dict[tuple[str, str], _Key] = {}
        self.views: dict[int, View] = {}
        self.queries: dict[tuple[int, int | None, int], CompiledQuery] = {}

    def clear(self) -> None:
        self.keys.clear()
        self.views.clear()
        self.queries.clear()

    def _key(self, raw: str, agent_id: int, now: float) -> _Key | None:
        """The cached (or freshly verified) key `raw`, if it is this agent's."""
        if not raw.startswith(KEY_PREFIX) or len(raw) < len(KEY_PREFIX) + LOOKUP_CHARS + 16:
            return None
        ident = (raw[len(KEY_PREFIX) : len(KEY_PREFIX) + LOOKUP_CHARS], key_digest(raw))
        held = self.keys.get(ident)
        if held is not None and held.until > now:
            if held.expires_at is not None and held.expires_at <= timezone.now():
                del self.keys[ident]
                return None
            return held if held.agent.pk == agent_id else None
        try:
            key = agent_key_authenticate(raw=raw)
        except KeyRejected:
            self.keys.pop(ident, None)
            return None
        held = _Key(key_id=key.pk, agent=key.agent, expires_at=key.expires_at,
                    until=now + CACHE_SECONDS, used_at=now)  # fmt: skip
        self.keys[ident] = held
        return held if key.agent_id == agent_id else None

    def _touch(self, held: _Key, now: float) -> None:
        """last_used_at, at most once a LAST_USED_RESOLUTION per key and worker."""
        if now - held.used_at < LAST_USED_RESOLUTION.total_seconds():
            return
        held.used_at = now
        at = timezone.now()
        stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=at - LAST_USED_RESOLUTION)
        AgentKey.objects.filter(stale, pk=held.key_id).update(last_used_at=at)

    def _query(self, agent: Agent, held: _Key | None) -> CompiledQuery:
        ident = (agent.pk, held.key_id if held is not None else None, agent.owner_id)
        if ident not in self.queries:
            if len(self.queries) >= MAX_QUERIES:
                self.queries.clear()
            self.queries[ident] = CompiledQuery(fingerprint_query(agent=agent, key_id=ident[1]))
        return self.queries[ident]

    def admit(self, *, authorization: str, agent_id: int) -> View:
        """The agent's current view, or the gateway's Refused.

        1. A cached key of this agent is reused; anything else goes through `authenticate`.
        2. The fingerprint re-checks the key and the view's inputs in one query.
        3. A view whose fingerprint or time ran out is rebuilt (its targets resolve lazily).
        """
        now = time.monotonic()
        scheme, _, raw = authorization.partition(" ")
        held = self._key(raw.strip(), agent_id, now) if scheme.lower() == "bearer" else None
        agent = held.agent if held is not None else self.authenticate(
            authorization=authorization, agent_id=agent_id)  # fmt: skip
        state = fingerprint(self._query(agent, held), keyed=held is not None)
        if held is not None and not (state and state[-1] and state[OWNER] == agent.owner_id):
            # Revoked, expired or given another owner since cached: checked in full again.
            self.keys = {k: v for k, v in self.keys.items() if v is not held}
            held = None
            agent = self.authenticate(authorization=authorization, agent_id=agent_id)
            state = fingerprint(self._query(agent, None), keyed=False)
        elif held is not None:
            self._touch(held, now)
            state = state[:-1]
        view = self.views.get(agent.pk)
        if view is None or view.state != state or view.until <= now:
            view = View(agent=agent, state=state, until=_until(now, state[EXPIRES] if state else None),
                        catalog=agent_catalog(agent=agent))  # fmt: skip
            self.views[agent.pk] = view
        return view

    def target(self, view: View, server_id: int, resolve: Callable[..., Target | str]) -> Any:
        """The server's target for the view's agent, resolved once per view."""
        if server_id not in view.targets:
            view.targets[server_id] = resolve(agent=view.agent, server_id=server_id)
        return view.targets[server_id]


@dataclass
class ToolCallBuffer:
    """ToolCall rows waiting for the flusher (the gateway's lifespan task): no call waits on
    an INSERT. Lost if the worker is killed; flushed on an orderly shutdown."""

    rows: list[ToolCall] = field(default_factory=list)

    def add(
        self, *, agent_id: int, server_id: int | None, tool: str, started: float, outcome: str,
        argument_bytes: int, arguments: Any = None,
    ) -> None:  # fmt: skip
        """Buffer the call's row (`arguments`: already redacted by gateway.services.capture,
        None unless capture is on) and count it in the metrics by server and outcome."""
        seconds = time.monotonic() - started
        self.rows.append(ToolCall(agent_id=agent_id, server_id=server_id, tool=tool[:255],
                                  duration_ms=round(seconds * 1000), outcome=outcome,
                                  argument_bytes=argument_bytes,
                                  arguments=arguments))  # fmt: skip
        record_gateway_call(server_id=server_id, outcome=outcome, seconds=seconds)

    @property
    def full(self) -> bool:
        return len(self.rows) >= FLUSH_ROWS

    def flush(self) -> int:
        """Insert what is buffered (synchronous: the ORM); keep it for the next try on failure."""
        rows, self.rows = self.rows, []
        if not rows:
            return 0
        try:
            with transaction.atomic():
                ToolCall.objects.bulk_create(rows, batch_size=FLUSH_ROWS)
        except Exception:
            logger.exception("could not write %d ToolCall rows; retrying", len(rows))
            self.rows = (rows + self.rows)[-MAX_BUFFERED:]
            return 0
        return len(rows)
