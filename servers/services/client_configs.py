"""An agent's client config rendered in the file format each MCP client documents.

`mcp_config_build` gives one generic document (`mcpServers`, a `type` per entry). Clients
disagree on nearly everything else: the file, the top-level key, the `type` values, whether
a remote entry is `url` or `serverUrl`, whether headers are allowed at all, and whether the
file is JSON or TOML. Each renderer below follows its client's documentation (the source is
named next to it and in tests/fixtures/client_configs/). What a client cannot express is
listed under `unsupported` with the reason, never silently dropped.

Pure functions over the generic document: no database, no network.
"""

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Entry = dict[str, Any]


@dataclass(frozen=True)
class ClientFormat:
    """One client's documented config file."""

    name: str
    file_name: str  # where the client reads it (project file when there is one)
    syntax: str  # "json" or "toml"
    source: str  # the documentation the format follows


CLIENTS: dict[str, ClientFormat] = {
    f.name: f
    for f in (
        ClientFormat(
            "claude-desktop", "claude_desktop_config.json", "json",
            "https://modelcontextprotocol.io/quickstart/user",
        ),
        ClientFormat("claude-code", ".mcp.json", "json", "https://code.claude.com/docs/en/mcp"),
        ClientFormat(
            "vscode", ".vscode/mcp.json", "json",
            "https://code.visualstudio.com/docs/copilot/reference/mcp-configuration",
        ),
        ClientFormat("cursor", ".cursor/mcp.json", "json", "https://cursor.com/docs/mcp"),
        ClientFormat(
            "windsurf", "~/.codeium/windsurf/mcp_config.json", "json",
            "https://docs.windsurf.com/windsurf/cascade/mcp",
        ),
        ClientFormat("codex", "~/.codex/config.toml", "toml", "https://developers.openai.com/codex/mcp"),
        ClientFormat("generic", "mcp.json", "json", "docs/api.md (mcpcontrol's own document)"),
    )
}  # fmt: skip

# mcp-remote's --transport value per remote type (github.com/geelen/mcp-remote).
_BRIDGE_TRANSPORT = {"http": "http-only", "sse": "sse-only"}
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


class Unsupported(Exception):
    """This client cannot express the entry; the message says why, in words."""


def _stdio(entry: Entry, *, typed: bool) -> Entry:
    out: Entry = {"type": "stdio"} if typed else {}
    out.update(command=entry["command"], args=list(entry.get("args") or []))
    if entry.get("env"):
        out["env"] = dict(entry["env"])
    return out


def _remote(entry: Entry, *, url_key: str, types: dict[str, str] | None) -> Entry:
    kind = entry["type"]
    if kind == "ws":
        raise Unsupported("this client has no WebSocket transport")
    out: Entry = {}
    if types is not None:
        if kind not in types:
            raise Unsupported(f"this client has no {kind} transport")
        out["type"] = types[kind]
    out[url_key] = entry["url"]
    if entry.get("headers"):
        out["headers"] = dict(entry["headers"])
    return out


def _typed_json(entry: Entry) -> Entry:
    """Claude Code's .mcp.json and VS Code's mcp.json: `type` is stdio, http or sse."""
    if entry["type"] == "stdio":
        return _stdio(entry, typed=True)
    return _remote(entry, url_key="url", types={"http": "http", "sse": "sse"})


def _cursor(entry: Entry) -> Entry:
    """Cursor: `command` or `url` (+ `headers`); the transport is told from the entry."""
    if entry["type"] == "stdio":
        return _stdio(entry, typed=False)
    return _remote(entry, url_key="url", types=None)


def _windsurf(entry: Entry) -> Entry:
    """Windsurf: a remote server is `serverUrl` (a Cursor-style `url` does not connect)."""
    if entry["type"] == "stdio":
        return _stdio(entry, typed=False)
    return _remote(entry, url_key="serverUrl", types=None)


def _bridge(entry: Entry) -> Entry:
    """A remote server for a stdio-only client, through `npx mcp-remote <url>`.

    Header values go to env and the argument names them (`Name:${VAR}`, no space): the
    mcp-remote README's workaround for clients that split arguments on spaces.
    """
    kind = entry["type"]
    if kind not in _BRIDGE_TRANSPORT:
        raise Unsupported(f"mcp-remote cannot bridge the {kind} transport")
    args = ["-y", "mcp-remote", entry["url"], "--transport", _BRIDGE_TRANSPORT[kind]]
    if entry["url"].startswith("http://"):
        args.append("--allow-http")
    env: dict[str, str] = {}
    for number, (name, value) in enumerate(sorted((entry.get("headers") or {}).items())):
        var = f"MCP_REMOTE_HEADER_{number}"
        args += ["--header", f"{name}:${{{var}}}"]
        env[var] = value
    out: Entry = {"command": "npx", "args": args}
    if env:
        out["env"] = env
    return out


def _claude_desktop(bridge: bool) -> Callable[[Entry], Entry]:
    def render(entry: Entry) -> Entry:
        if entry["type"] == "stdio":
            return _stdio(entry, typed=False)
        if not bridge:
            raise Unsupported(
                "Claude Desktop's config file takes only local (stdio) servers; an operator "
                "can enable bridging through npx mcp-remote (MCPCONTROL_CONFIG_BRIDGE_REMOTE)"
            )
        return _bridge(entry)

    return render


def _codex(entry: Entry) -> Entry:
    """Codex: stdio or streamable HTTP (`url`, `http_headers`); no SSE, no WebSocket."""
    if entry["type"] == "stdio":
        return _stdio(entry, typed=False)
    if entry["type"] != "http":
        raise Unsupported(f"Codex supports stdio and streamable HTTP only, not {entry['type']}")
    out: Entry = {"url": entry["url"]}
    if entry.get("headers"):
        out["http_headers"] = dict(entry["headers"])
    return out


def _toml_string(value: str) -> str:
    # JSON's escapes are TOML's basic-string escapes, except DEL, which TOML also refuses raw.
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _toml_string(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        pairs = (f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + ", ".join(pairs) + " }" if value else "{}"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def codex_toml(servers: dict[str, Entry]) -> str:
    """`[mcp_servers.<name>]` tables, one per server (Codex's config.toml)."""
    blocks = []
    for name, entry in servers.items():
        lines = [f"[mcp_servers.{_toml_key(name)}]"]
        lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in entry.items()]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def _renderer(client: str, bridge: bool) -> Callable[[Entry], Entry]:
    return {
        "claude-desktop": _claude_desktop(bridge),
        "claude-code": _typed_json,
        "vscode": _typed_json,
        "cursor": _cursor,
        "windsurf": _windsurf,
        "codex": _codex,
        "generic": dict,
    }[client]


def client_config_render(*, config: dict[str, Any], client: str, bridge: bool) -> dict[str, Any]:
    """Render `mcp_config_build`'s document for `client` (a key of CLIENTS).

    1. Render each server entry the client's way; an entry it cannot express goes to
       `unsupported` with the reason.
    2. Wrap the servers in the client's top-level key (`servers` for VS Code, a TOML table
       per server for Codex, `mcpServers` otherwise) and serialize the file's text.
    """
    fmt = CLIENTS[client]
    render = _renderer(client, bridge)
    servers: dict[str, Entry] = {}
    unsupported: list[dict[str, str]] = []
    for key, entry in config["mcpServers"].items():
        try:
            servers[key] = render(entry)
        except Unsupported as exc:
            unsupported.append({"server_key": key, "type": entry["type"], "reason": str(exc)})
    document: dict[str, Any] | None
    if fmt.syntax == "toml":
        document, content = None, codex_toml(servers)
    else:
        document = (
            {"servers": servers, "inputs": []} if client == "vscode" else {"mcpServers": servers}
        )
        content = json.dumps(document, indent=2) + "\n"
    return {
        "client": client, "file_name": fmt.file_name, "syntax": fmt.syntax,
        "source": fmt.source, "config": document, "content": content,
        "unsupported": unsupported, "missing_credentials": config["missing_credentials"],
    }  # fmt: skip
