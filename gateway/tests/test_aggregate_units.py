"""The pure parts of the gateway's lists: cursors, prompt names and URIs (no database)."""

import pytest
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS

from gateway.services.aggregate import find_prompt, find_resource, merge, split_uri
from gateway.services.catalog import ServerRef
from gateway.services.pages import page
from gateway.services.policy import ToolFilter

NAMES = [f"n{i}" for i in range(10)]


def walk(items: list[str], size: int) -> list[str]:
    seen, cursor = [], None
    while True:
        chunk, cursor = page(items, cursor, name_of=str, size=size)
        seen += chunk
        if cursor is None:
            return seen


def test_a_cursor_walk_returns_each_item_once_whatever_the_page_size():
    for size in (1, 3, 10, 11):
        assert walk(NAMES, size) == NAMES


def test_a_list_that_changed_between_pages_resumes_after_the_last_name():
    _, cursor = page(NAMES, None, name_of=str, size=4)
    changed = ["new", *NAMES]  # an item added in front: no repeat
    assert page(changed, cursor, name_of=str, size=4)[0] == ["n4", "n5", "n6", "n7"]
    gone = [n for n in NAMES if n != "n3"]  # the last name handed out is gone: nothing skipped
    assert page(gone, cursor, name_of=str, size=4)[0] == ["n4", "n5", "n6", "n7"]


@pytest.mark.parametrize("cursor", ["", "%%%", "djE6eDp5", "x" * 5000, "bm90IG91cnM"])
def test_a_cursor_we_did_not_make_is_invalid_params(cursor):
    with pytest.raises(MCPError) as caught:
        page(NAMES, cursor, name_of=str, size=3)
    assert caught.value.code == INVALID_PARAMS


def refs(*prefixes: str) -> list[ServerRef]:
    return [ServerRef(server_id=i, server_name=p, key=p, prefix=f"{p}_")
            for i, p in enumerate(prefixes)]  # fmt: skip


def test_a_prompt_name_two_servers_share_is_offered_by_neither():
    servers = refs("a", "a_b")  # a_ + b_c and a_b_ + c are both "a_b_c"
    fetched = [(servers[0], [{"name": "b_c"}, {"name": "x"}]), (servers[1], [{"name": "c"}])]
    listing = merge("prompts", fetched, [])
    assert [i["name"] for i in listing.items] == ["a_x"]
    assert listing.routes == {"a_x": (0, "x")}
    assert len(find_prompt("a_b_c", servers, [])) == 2  # get_prompt then asks the listing


def test_resource_uris_are_prefixed_reversibly_and_the_policy_applies():
    servers = refs("docs")
    fetched = [(servers[0], [{"uri": "file:///a/b.txt", "name": "b"}])]
    [item] = merge("resources", fetched, []).items
    assert item["uri"] == "mcpcontrol://docs/file:///a/b.txt" and item["name"] == "docs_b"
    assert split_uri(item["uri"]) == ("docs", "file:///a/b.txt")
    assert find_resource(item["uri"], servers, []) == (servers[0], "file:///a/b.txt")
    deny = [ToolFilter(source="test", allow=[], deny=["mcpcontrol://docs/*"])]
    assert merge("resources", fetched, deny).items == []
    with pytest.raises(MCPError):
        find_resource(item["uri"], servers, deny)
    assert split_uri("mcpcontrol://docs") is None and split_uri("file:///x") is None
