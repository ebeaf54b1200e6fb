"""resources/* and prompts/* across every server an agent may use.

The health engine stores only tool lists, so these lists are asked of the upstreams live,
over the pooled sessions and stdio processes, all servers at once, each under its
own timeout. An upstream that fails, is slow, or lacks the capability is left out of the
list; it never fails the list. A listing is kept for LIST_CACHE_SECONDS per agent view
(the view's fingerprint is part of the key, so a change of servers, credentials or policy
is seen at once).

Names and URIs (docs/gateway.md, "Resources and prompts"):
- a prompt is named like a tool, `mcp__<key>__<prompt>` or `<alias>_<prompt>`; a name
  two servers would share is offered by neither; the policies' allow/deny apply (the agent's and its owner's groups');
- a resource's URI becomes `mcpcontrol://<key>/<upstream uri>` (templates alike: the
  upstream template is kept verbatim after the prefix, so a client expands it as usual);
  the key has no "/", so the first "/" after it splits the URI back. The policy's
  patterns apply to that prefixed URI (`mcpcontrol://<key>/*`); its `name` gets the prompt
  prefix, for display.
"""

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
import mcp_types as types
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS

from gateway.services.catalog import ServerRef
from gateway.services.policy import ToolFilter, tool_refused_by
from gateway.services.sessions import SessionPool, _Held
from servers.mcp_client import Target
from servers.mcp_client.errors import Observed, classify

logger = logging.getLogger(__name__)

URI_SCHEME = "mcpcontrol://"
LIST_CACHE_SECONDS = 5.0
MAX_UPSTREAM_PAGES = 50  # an upstream whose cursors never end is cut off there
MAX_CACHED = 1000  # listings kept per worker (each is an agent view and a kind)
UPSTREAM_ERROR = -32603  # JSON-RPC internal error: the upstream failed, not the request

Kind = Literal["resources", "templates", "prompts"]
type Work[T] = Callable[[Client], Awaitable[T]]


class Unreachable(Exception):
    """The upstream could not serve the request (the message says why, never a secret)."""


def prefixed_uri(key: str, uri: str) -> str:
    return f"{URI_SCHEME}{key}/{uri}"


def split_uri(uri: str) -> tuple[str, str] | None:
    """(server key, upstream URI) of a gateway URI, or None when it is not one."""
    if not uri.startswith(URI_SCHEME):
        return None
    key, slash, upstream = uri[len(URI_SCHEME) :].partition("/")
    return (key, upstream) if key and slash and upstream else None


async def with_client[T](
    target: Target, work: Work[T], *, server_id: int, sessions: SessionPool
) -> T:
    """Run `work` with a client of the upstream under its timeout; Unreachable on failure.

    Upstreams are reached over the pooled session (or stdio process) of (server,
    credential), as tools/call is; a transport failure closes that session."""
    limit = target.init_timeout + target.timeout
    held: _Held | None = None
    observed = Observed()
    try:
        with anyio.fail_after(limit):
            async with sessions.session(server_id, target) as held:
                if held.client is None:
                    raise held.error or RuntimeError("the upstream session closed")
                return await work(held.client)
    except TimeoutError as exc:
        if held is not None and held.process is not None:
            sessions.discard(held)  # a hung stdio process would keep its slot
        raise Unreachable(f"the upstream did not answer within {limit:g}s") from exc
    except MCPError:
        raise  # the upstream answered with an error: the caller passes it on
    except Exception as exc:
        if held is not None:
            sessions.discard(held)
        _, message = classify(exc, held.observed if held is not None else observed)
        raise Unreachable(message) from exc


# What a connected client is asked for each kind, and whether the server says it has it.
def _capable(client: Client, kind: Kind) -> bool:
    caps = client.server_capabilities
    return (caps.prompts if kind == "prompts" else caps.resources) is not None


async def _list_once(
    client: Client, kind: Kind, cursor: str | None
) -> tuple[list[Any], str | None]:
    if kind == "prompts":
        prompts = await client.list_prompts(cursor=cursor)
        return list(prompts.prompts), prompts.next_cursor
    if kind == "resources":
        resources = await client.list_resources(cursor=cursor)
        return list(resources.resources), resources.next_cursor
    templates = await client.list_resource_templates(cursor=cursor)
    return list(templates.resource_templates), templates.next_cursor


async def upstream_list(client: Client, kind: Kind) -> list[dict[str, Any]]:
    """Every item of `kind` the upstream lists (all its pages), as wire dicts; [] without
    the capability."""
    if not _capable(client, kind):
        return []
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(MAX_UPSTREAM_PAGES):
        batch, cursor = await _list_once(client, kind, cursor)
        items += [i.model_dump(by_alias=True, mode="json", exclude_none=True) for i in batch]
        if not cursor:
            break
    return items


@dataclass(kw_only=True)
class Listing:
    """One kind's aggregated list, under the agent's names, with each item's route."""

    items: list[dict[str, Any]] = field(default_factory=list)
    routes: dict[str, tuple[int, str]] = field(default_factory=dict)  # name -> (server, upstream)
    left_out: dict[str, str] = field(default_factory=dict)  # server name -> why


def item_key(kind: Kind, item: dict[str, Any]) -> str:
    """What identifies an item of `kind` in the agent's list (and in a page cursor)."""
    if kind == "prompts":
        return str(item["name"])
    return str(item["uri"] if kind == "resources" else item["uriTemplate"])


def merge(
    kind: Kind, fetched: list[tuple[ServerRef, list[dict[str, Any]]]], filters: Sequence[ToolFilter]
) -> Listing:
    """Rename (prompts) or re-address (resources, templates) each server's items, drop what
    collides or what the policy refuses, keep the servers' order."""
    listing = Listing()
    renamed: list[tuple[str, dict[str, Any], int, str]] = []
    for ref, items in fetched:
        for item in items:
            upstream = item_key(kind, item)
            item = dict(item)
            if kind == "prompts":
                item["name"] = ref.prefix + upstream
            else:
                item["uri" if kind == "resources" else "uriTemplate"] = prefixed_uri(
                    ref.key, upstream
                )
                item["name"] = ref.prefix + str(item.get("name", ""))
            renamed.append((item_key(kind, item), item, ref.server_id, upstream))
    counts: dict[str, int] = {}
    for name, *_ in renamed:
        counts[name] = counts.get(name, 0) + 1
    for name, item, server_id, upstream in renamed:
        if counts[name] > 1 or tool_refused_by(filters, name) is not None:
            continue
        listing.items.append(item)
        listing.routes[name] = (server_id, upstream)
    return listing


Reach = Callable[[ServerRef, Work[Any]], Awaitable[Any]]


class Aggregator:
    """Lists fetched from the upstreams, cached per (agent view, kind) for a few seconds."""

    def __init__(self, *, cache_seconds: float = LIST_CACHE_SECONDS) -> None:
        self.cache_seconds = cache_seconds
        self.cache: dict[tuple[Any, ...], tuple[float, Listing]] = {}

    async def listing(
        self, kind: Kind, *, view_key: tuple[Any, ...], servers: list[ServerRef],
        filters: Sequence[ToolFilter], reach: Reach,
    ) -> Listing:  # fmt: skip
        key = (*view_key, kind)
        now = time.monotonic()
        cached = self.cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        fetched: list[tuple[ServerRef, list[dict[str, Any]]] | None] = [None] * len(servers)
        left_out: dict[str, str] = {}

        async def one(i: int, ref: ServerRef) -> None:
            try:
                fetched[i] = (ref, await reach(ref, lambda client: upstream_list(client, kind)))
            except (Unreachable, MCPError) as exc:  # left out, never failing the list
                left_out[ref.server_name] = str(exc) or type(exc).__name__
                logger.info("gateway %s list: %s left out: %s", kind, ref.server_name, exc)

        async with anyio.create_task_group() as tg:
            for i, ref in enumerate(servers):
                tg.start_soon(one, i, ref)
        listing = merge(kind, [f for f in fetched if f is not None], filters)
        listing.left_out = left_out
        if len(self.cache) >= MAX_CACHED:
            self.cache.clear()
        self.cache[key] = (now + self.cache_seconds, listing)
        return listing


def find_prompt(
    name: str, servers: list[ServerRef], filters: Sequence[ToolFilter]
) -> list[tuple[ServerRef, str]]:
    """The servers a prompt name may belong to, by prefix (one, unless aliases overlap),
    with the upstream's name; none when the policy refuses the name."""
    if tool_refused_by(filters, name) is not None:
        return []
    return [(ref, name[len(ref.prefix) :]) for ref in servers
            if name.startswith(ref.prefix) and len(name) > len(ref.prefix)]  # fmt: skip


def find_resource(
    uri: str, servers: list[ServerRef], filters: Sequence[ToolFilter]
) -> tuple[ServerRef, str]:
    """The server and upstream URI behind a gateway URI, or INVALID_PARAMS."""
    parts = split_uri(uri)
    if parts is None:
        raise MCPError(INVALID_PARAMS, f"{uri}: not a gateway URI ({URI_SCHEME}<server>/<uri>)")
    ref = next((r for r in servers if r.key == parts[0]), None)
    if ref is None or tool_refused_by(filters, uri) is not None:
        raise MCPError(INVALID_PARAMS, f"{uri}: no such resource")
    return ref, parts[1]


def readdress_contents(result: types.ReadResourceResult, key: str) -> types.ReadResourceResult:
    """The upstream's contents carry its own URIs: give them back under the gateway's."""
    for content in result.contents:
        content.uri = prefixed_uri(key, str(content.uri))
    return result
